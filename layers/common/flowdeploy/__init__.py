"""Space Operator-style flow deployments on AWS Lambda."""
