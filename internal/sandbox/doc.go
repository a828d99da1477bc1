// Package sandbox is a local simulator of WeChat Pay's brand API for
// crowd-package uploads, speaking the real wire protocol over HTTP(S).
//
// It verifies request signatures with each brand's public key (any parameter
// order, known brand, certificate serial, ±5 minute timestamp window, nonce
// replay, Wechatpay-Serial), applies the documented field rules, keeps upload
// sessions in memory and signs every answer with its own WeChat Pay key. Faults
// (5xx, 429, 202, latency, lost responses) can be injected per endpoint from a
// seeded PRNG or scripted for the next N calls.
//
// It is at least as strict as the documentation, so a client regression fails
// here and not in production: Accept must be application/json, nonce_str at
// most 32 characters, the timestamp plain digits, the signature canonical
// Base64; JSON keys must not repeat; and a repeated merge or expand is refused
// with 400 INVALID_REQUEST ("already merged", "already expanded") unless
// Config.Idempotent (or SetIdempotency, or PUT /sandbox/idempotency) allows it.
//
// Choices the documentation leaves open ([inferred] in the API notes) are made
// here the same way the client makes them: multipart/form-data with a
// file_meta field that is signed, part numbers from 1, resource_id as the
// merge answer's field, filenames unique per brand.
//
// The admin endpoints under /sandbox/ (records, merged files, faults) have no
// authentication: they exist for tests and demos only.
package sandbox
