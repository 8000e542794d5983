//! Tag operations: TagResource, UntagResource, ListResourceTags, and the tag rules CreateKey
//! shares (at most 50 tags; key 1..128, value 0..256 characters; `aws:` prefix reserved).

use crate::authz::Resource;
use crate::caller::Caller;
use crate::error::{KmsError, KmsResult};
use crate::ids::KeyIdForms;
use crate::model::Tag;
use crate::service::Kms;
use crate::validate;

pub const MAX_TAGS: usize = 50;

/// A page of ListResourceTags.
#[derive(Debug, Clone)]
pub struct TagList {
    pub tags: Vec<Tag>,
    pub next_marker: Option<String>,
}

/// Checks tags as given in a request.
pub fn validate_tags(tags: &[Tag]) -> KmsResult<()> {
    // AWS checks the members' lengths first (a ValidationException naming the member's
    // 1-based index: `tags.1.member.tagKey`), then the tag rules (TagException).
    for (i, t) in tags.iter().enumerate() {
        let n = i + 1;
        validate::length(&format!("tags.{n}.member.tagKey"), &t.key, 1, 128)?;
        validate::length(&format!("tags.{n}.member.tagValue"), &t.value, 0, 256)?;
    }
    let mut seen = std::collections::HashSet::new();
    for t in tags {
        let allowed = |c: char| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c);
        if !t.key.chars().all(allowed) || !t.value.chars().all(allowed) {
            return Err(KmsError::Tag(format!(
                "Tag key or value contains characters that are not allowed: '{}'",
                t.key
            )));
        }
        if t.key.to_ascii_lowercase().starts_with("aws:") {
            return Err(KmsError::Tag(
                "Tags beginning with aws: are reserved".into(),
            ));
        }
        if !seen.insert(t.key.as_str()) {
            return Err(KmsError::Tag("Duplicate tag keys".into()));
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(too_many_tags());
    }
    Ok(())
}

/// AWS's answer to more than [`MAX_TAGS`] tags on a key, in the request or after it.
fn too_many_tags() -> KmsError {
    KmsError::Tag("Too many tags".into())
}

impl Kms {
    pub async fn tag_resource(
        &self,
        caller: &Caller,
        key_id: Option<&str>,
        tags: Option<Vec<Tag>>,
    ) -> KmsResult<()> {
        self.admit(caller, crate::quotas::RateQuota::TagResource)?;
        let key_id = validate::required("keyId", key_id)?;
        let tags = validate::required("tags", tags)?;
        validate_tags(&tags)?;
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOnly).await?;
        let mut context = trent_policy::ConditionContext::new();
        crate::keys::add_request_tags(&mut context, &tags);
        self.authorize_with(caller, "kms:TagResource", Resource::Key(&key), context)?;
        crate::key_state::check(crate::key_state::Op::Manage, &key.record)?;
        self.update_key_record(&key.record.key_id, |r| {
            // Cloned: on a shared store the change may be applied again (`update_key_record`).
            for t in tags.iter().cloned() {
                match r.tags.binary_search_by(|x| x.key.cmp(&t.key)) {
                    Ok(i) => {
                        if let Some(slot) = r.tags.get_mut(i) {
                            slot.value = t.value;
                        }
                    }
                    Err(i) => r.tags.insert(i, t),
                }
            }
            if r.tags.len() > MAX_TAGS {
                return Err(too_many_tags());
            }
            Ok(())
        })
        .await
        .map(|_| ())
    }

    pub async fn untag_resource(
        &self,
        caller: &Caller,
        key_id: Option<&str>,
        tag_keys: Option<Vec<String>>,
    ) -> KmsResult<()> {
        self.admit(caller, crate::quotas::RateQuota::UntagResource)?;
        let key_id = validate::required("keyId", key_id)?;
        let tag_keys = validate::required("tagKeys", tag_keys)?;
        for (i, k) in tag_keys.iter().enumerate() {
            validate::length(&format!("tagKeys.{}.member", i + 1), k, 1, 128)?;
            if k.to_ascii_lowercase().starts_with("aws:") {
                return Err(KmsError::Tag(
                    "Tags beginning with aws: are reserved".into(),
                ));
            }
        }
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOnly).await?;
        let mut context = trent_policy::ConditionContext::new();
        context.insert_multi("aws:TagKeys", tag_keys.iter().cloned());
        self.authorize_with(caller, "kms:UntagResource", Resource::Key(&key), context)?;
        crate::key_state::check(crate::key_state::Op::Manage, &key.record)?;
        self.update_key_record(&key.record.key_id, |r| {
            r.tags.retain(|t| !tag_keys.contains(&t.key));
            Ok(())
        })
        .await
        .map(|_| ())
    }

    pub async fn list_resource_tags(
        &self,
        caller: &Caller,
        key_id: Option<&str>,
        limit: Option<i64>,
        marker: Option<&str>,
    ) -> KmsResult<TagList> {
        self.admit(caller, crate::quotas::RateQuota::ListResourceTags)?;
        let key_id = validate::required("keyId", key_id)?;
        let limit = validate::limit(limit, 50, 50)?;
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOnly).await?;
        self.authorize(caller, "kms:ListResourceTags", Resource::Key(&key))?;
        let start = match marker {
            None => 0,
            Some(m) => {
                validate::length("marker", m, 1, 1024)?;
                // The marker is the last tag key returned; tags are kept in key order.
                key.record.tags.partition_point(|t| t.key.as_str() <= m)
            }
        };
        let rest = key.record.tags.get(start..).unwrap_or_default();
        let tags: Vec<Tag> = rest.iter().take(limit).cloned().collect();
        let next_marker = (rest.len() > limit)
            .then(|| tags.last().map(|t| t.key.clone()))
            .flatten();
        Ok(TagList { tags, next_marker })
    }
}
