"""wsdoctor.broadcast."""
