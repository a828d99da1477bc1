// Package wechatpay is a client for the WeChat Pay brand API's crowd-package
// (user-package) upload endpoints.
//
// Every request is signed with the brand's API key (scheme
// WECHATPAY-BRAND-SHA256-RSA2048) and every 2xx response is trusted only after
// its signature, serial and timestamp were verified against the WeChat Pay
// public key. The signing and verification primitives are exported so that
// the sandbox (internal/sandbox) can reuse the parser and message builders.
//
// The client never retries by itself except to fail over to the backup host
// when the primary could not be reached at all; callers decide what to do with
// an error through Classify, RetryAfter and MayHaveReachedServer.
//
// Nothing in this package logs, and no error carries key material, a
// signature, the Authorization header or a request body.
package wechatpay
