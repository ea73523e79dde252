"""wsdoctor.protocol."""
