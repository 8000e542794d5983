//! [`XksClient`] behind the custody seam: `trent_crypto::custody::xks::{XksProvider,
//! XksProxy}`, which is all `trent-core` sees of an external key store.

use std::sync::Arc;

use trent_crypto::custody::xks::{
    XksFailure, XksFuture, XksKeyInfo, XksProvider, XksProxy, XksProxyLocation, XksRequestContext,
    decode_external_blob,
};
use zeroize::Zeroizing;

use crate::client::{ClientSettings, ProxyTarget, XksClient};
use crate::error::XksError;
use crate::wire::RequestMetadata;

/// Makes [`XksClient`]s sharing one node's [`ClientSettings`].
pub struct XksClientProvider {
    settings: ClientSettings,
}

impl XksClientProvider {
    pub fn new(settings: ClientSettings) -> Self {
        Self { settings }
    }
}

impl XksProvider for XksClientProvider {
    fn proxy(&self, location: XksProxyLocation) -> Result<Arc<dyn XksProxy>, Box<XksFailure>> {
        let client = XksClient::new(
            &self.settings,
            ProxyTarget {
                uri_endpoint: location.uri_endpoint,
                uri_path: location.uri_path,
                access_key_id: location.access_key_id,
                secret_access_key: location.secret_access_key,
                region: location.region,
            },
        )
        .map_err(|e| Box::new(XksFailure::from(e)))?;
        Ok(Arc::new(client))
    }
}

fn metadata(ctx: &XksRequestContext) -> RequestMetadata {
    RequestMetadata {
        aws_principal_arn: ctx.aws_principal_arn.clone(),
        kms_key_arn: ctx.kms_key_arn.clone(),
        kms_operation: Some(ctx.kms_operation.clone()),
        kms_request_id: Some(ctx.kms_request_id.clone()),
        ..Default::default()
    }
}

impl XksProxy for XksClient {
    fn health<'a>(&'a self, ctx: &'a XksRequestContext) -> XksFuture<'a, ()> {
        Box::pin(async move {
            // GetHealthStatus carries only the request id and operation.
            let meta = RequestMetadata {
                kms_operation: Some(ctx.kms_operation.clone()),
                kms_request_id: Some(ctx.kms_request_id.clone()),
                ..Default::default()
            };
            self.get_health_status(meta)
                .await
                .map(|_| ())
                .map_err(XksFailure::from)
        })
    }

    fn key_metadata<'a>(
        &'a self,
        xks_key_id: &'a str,
        ctx: &'a XksRequestContext,
    ) -> XksFuture<'a, XksKeyInfo> {
        Box::pin(async move {
            self.get_key_metadata(xks_key_id, metadata(ctx))
                .await
                .map(|m| m.info())
                .map_err(XksFailure::from)
        })
    }

    fn seal<'a>(
        &'a self,
        xks_key_id: &'a str,
        ctx: &'a XksRequestContext,
        key_id: [u8; 16],
        canonical_context: &'a [u8],
        inner: &'a [u8],
    ) -> XksFuture<'a, Vec<u8>> {
        Box::pin(async move {
            self.seal_layer(xks_key_id, metadata(ctx), key_id, canonical_context, inner)
                .await
                .map_err(XksFailure::from)
        })
    }

    fn open<'a>(
        &'a self,
        xks_key_id: &'a str,
        ctx: &'a XksRequestContext,
        canonical_context: &'a [u8],
        outer: &'a [u8],
    ) -> XksFuture<'a, Zeroizing<Vec<u8>>> {
        Box::pin(async move {
            // The caller found the key by this blob's header; a body that does not parse is
            // a ciphertext the proxy would refuse.
            let Some((key_id, sealed)) = decode_external_blob(outer) else {
                return Err(XksFailure::from(XksError::Proxy {
                    name: crate::error::ProxyErrorName::InvalidCiphertextException,
                    message: "malformed external key store ciphertext".into(),
                }));
            };
            self.open_layer(
                xks_key_id,
                metadata(ctx),
                key_id,
                canonical_context,
                &sealed,
            )
            .await
            .map_err(XksFailure::from)
        })
    }
}
