"""The local runtime: API Gateway, Lambda and the AWS endpoint on one machine."""
