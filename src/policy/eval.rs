//! Evaluation of IAM-language policies (SCPs) against a request. Placeholder: see the helper's work.
