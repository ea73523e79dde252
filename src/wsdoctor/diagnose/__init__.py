"""wsdoctor.diagnose."""
