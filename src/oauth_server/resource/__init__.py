"""The resource-server side: bearer-token verification (RFC 6750) and the restaurants domain."""
