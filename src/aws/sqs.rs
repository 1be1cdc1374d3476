//! SQS through the SDK: the queue EventBridge fills with CloudTrail events.

use aws_config::SdkConfig;
use aws_sdk_sqs::Client;

use super::{CallCounter, classify};
use crate::cloud::CloudError;

pub use crate::policy::org::{EventQueue, Message};

/// An SQS queue.
#[derive(Debug, Clone)]
pub struct Queue {
    sqs: Client,
    url: String,
}

impl Queue {
    /// A client for the queue at `url`, reporting to `counter`.
    #[must_use]
    pub fn new(base: &SdkConfig, counter: &CallCounter, url: &str) -> Self {
        let sqs = Client::from_conf(
            aws_sdk_sqs::config::Builder::from(base)
                .interceptor(counter.clone())
                .build(),
        );
        Queue {
            sqs,
            url: url.to_string(),
        }
    }
}

impl EventQueue for Queue {
    /// Up to 10 messages, waiting at most `wait_seconds` for the first.
    async fn receive(&self, wait_seconds: i32) -> Result<Vec<Message>, CloudError> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait_seconds)
            .send()
            .await
            .map_err(|e| classify("ReceiveMessage", e))?;
        Ok(out
            .messages()
            .iter()
            .map(|m| Message {
                id: m.message_id().unwrap_or_default().to_string(),
                receipt: m.receipt_handle().unwrap_or_default().to_string(),
                body: m.body().unwrap_or_default().to_string(),
            })
            .collect())
    }

    /// Deletes a handled message.
    async fn delete(&self, receipt: &str) -> Result<(), CloudError> {
        self.sqs
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| classify("DeleteMessage", e))?;
        Ok(())
    }
}
