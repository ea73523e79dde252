"""wsdoctor.aio."""
