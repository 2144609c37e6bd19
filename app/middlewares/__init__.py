"""Request middlewares: request id and access log, input guards, authentication."""
