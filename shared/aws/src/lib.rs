//! firebell-aws: AWS adapters (CloudWatch, DynamoDB, SNS).
