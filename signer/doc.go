// Package signer issues short-lived signed URLs for paid media, so that
// credentials never leave the gateway:
//
//   - S3 pre-signed GET and PUT URLs (SigV4, through the AWS SDK's
//     s3.PresignClient), for AWS or any S3-compatible server;
//   - CloudFront signed URLs and signed cookies with canned or custom
//     policies (RSA-SHA1, through the SDK's feature/cloudfront/sign);
//   - gateway-signed links: an expiry and an HMAC-SHA256 signature in the
//     query string over the method, host, raw path and query, which
//     middleware.SignedLinks checks before a request reaches the
//     upstream, with key rotation (the first key signs, all verify) and
//     the redaction of signatures wherever a URI or Referer is logged
//     (RedactSignatures, SignatureSpan).
//
// It also owns what the admin API and the CLI send: the request types
// (S3Request, CloudFrontRequest, LinkRequest) and their strict JSON
// decoding (Decode), the errors that map to HTTP statuses (*DecodeError
// 400, *PrefixError 403, *FieldError 422), and the token prefixes that
// limit what a token may sign (Prefixes).
//
// It owns gatehouse's one duration syntax (ParseDuration, FormatDuration:
// Go units plus d and w, and bare seconds), which the config file, the
// admin API and the CLI share; it lives here because signer is the one
// package below all of them.
//
// signer stands alone: it imports none of gatehouse's packages. Its
// callers resolve what needs the rest of the gateway — which host a link
// is for, its canonical path (match.Canonical) for token prefixes, and
// that its raw path is the one canonical spelling (match.EscapePath) —
// and pass plain values in. Config comes in plain structs (S3Config,
// CloudFrontConfig, LinkConfig) built by proxy from the config file.
//
// Every signer has a clock (the Now field of its config), so expiry is
// tested without waiting. S3, CloudFront and Links are immutable once
// built and safe for concurrent use.
package signer
