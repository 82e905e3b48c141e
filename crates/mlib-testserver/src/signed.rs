//! Signed storage URLs that expire, as the ones Civitai's download endpoint redirects to.
//!
//! A real presigned URL expires after a time; a test cannot wait for a clock, so here a URL
//! expires after a budget of body bytes or of requests ([`Expiry`]). Every redirect of the
//! download endpoint signs a new URL (`X-Amz-Signature=sigN`), and the storage host checks the
//! signature on every request: an expired one is answered 403 with an S3-style XML body, as
//! R2 and S3 answer an expired presigned URL.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::blob::Served;
use crate::http::{Body, Head, Response};

/// When a signed storage URL stops working (set with [`crate::CivitaiVersion::signed_urls`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// The URL serves this many body bytes in all: the response that reaches the budget is
    /// cut there (the URL expired under a long download: the connection is closed), and every
    /// later request with the URL is refused.
    AfterBytes(u64),
    /// The URL answers this many requests (HEAD or GET); later ones are refused.
    AfterRequests(u32),
}

/// What is left of one signed URL's budget.
#[derive(Debug)]
struct Budget {
    bytes: Option<u64>,
    requests: Option<u32>,
}

impl Budget {
    fn expired(&self) -> bool {
        self.bytes == Some(0) || self.requests == Some(0)
    }
}

/// The signatures handed out so far.
#[derive(Default)]
pub(crate) struct Signatures {
    next: AtomicU64,
    issued: std::sync::Mutex<HashMap<String, Budget>>,
}

/// The query parameter that carries the signature.
const PARAM: &str = "X-Amz-Signature";

impl Signatures {
    /// A new signature valid until `expiry`.
    pub fn sign(&self, expiry: Expiry) -> String {
        let sig = format!("sig{}", self.next.fetch_add(1, Ordering::SeqCst));
        let budget = match expiry {
            Expiry::AfterBytes(n) => Budget {
                bytes: Some(n),
                requests: None,
            },
            Expiry::AfterRequests(n) => Budget {
                bytes: None,
                requests: Some(n),
            },
        };
        self.issued.lock().unwrap().insert(sig.clone(), budget);
        format!("X-Amz-Expires=3600&{PARAM}={sig}")
    }

    /// Answers a storage request: refused when its signature expired, else `served`'s answer,
    /// cut where the byte budget runs out. A URL without a signature this server issued (a
    /// version whose URLs never expire) is served as it is.
    pub fn serve(&self, head: &Head, served: &Served) -> Response {
        let Some(sig) = head.query(PARAM) else {
            return served.respond(head);
        };
        let mut issued = self.issued.lock().unwrap();
        let Some(budget) = issued.get_mut(sig) else {
            return served.respond(head);
        };
        if budget.expired() {
            return expired();
        }
        if let Some(n) = &mut budget.requests {
            *n -= 1;
        }
        let mut resp = served.respond(head);
        if let (Some(left), false) = (&mut budget.bytes, head.is_head())
            && let Body::Slice {
                start,
                end,
                cut_after,
                ..
            } = &mut resp.body
        {
            // Reserved when the answer starts, so parallel requests share one budget.
            let len = (*end - *start) as u64;
            let allowed = len.min(*left).min(cut_after.unwrap_or(u64::MAX));
            *left -= len.min(*left);
            if allowed < len {
                *cut_after = Some(allowed);
            }
        }
        resp
    }
}

fn expired() -> Response {
    Response::text(
        403,
        "application/xml",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>\n",
    )
}
