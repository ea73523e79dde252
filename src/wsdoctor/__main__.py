"""``python -m wsdoctor`` behaves exactly like the ``wsdoctor`` command."""

from wsdoctor.cli import main

if __name__ == "__main__":
    main()
