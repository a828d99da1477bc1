package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/crowdpack/crowdpack/internal/sandbox"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

func TestInjectedFaults(t *testing.T) {
	cases := []struct {
		name           string
		fault          sandbox.Fault
		retryAfter     int
		wantStatus     int
		wantRetryAfter time.Duration
	}{
		{name: "an injected 500 SYSTEM_ERROR is retryable", fault: sandbox.FaultSystemError, wantStatus: 500},
		{name: "an injected 503 is retryable", fault: sandbox.FaultUnavailable, wantStatus: 503},
		{name: "an injected 429 with Retry-After is retried after the given delay", fault: sandbox.FaultRateLimit, retryAfter: 7, wantStatus: 429, wantRetryAfter: 7 * time.Second},
		{name: "an injected 429 without Retry-After leaves the delay to the caller", fault: sandbox.FaultRateLimit, wantStatus: 429},
		{name: "an injected signed 202 is retryable", fault: sandbox.FaultAccepted, wantStatus: 202},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, inst := startSandbox(t, false)
			if err := srv.SetFaults(sandbox.EndpointInitiate, sandbox.Faults{RetryAfterSeconds: tc.retryAfter}); err != nil {
				t.Fatal(err)
			}
			if err := srv.FailNext(sandbox.EndpointInitiate, 1, tc.fault); err != nil {
				t.Fatal(err)
			}
			client := newClient(t, inst, credsA(t))
			req := initiateFor(fmt.Sprintf("fault_%d.csv", i), csvFile(10))
			_, err := client.InitiateUpload(context.Background(), req)
			var api *wechatpay.APIError
			if !errors.As(err, &api) || api.StatusCode != tc.wantStatus || wechatpay.Classify(err) != wechatpay.Retryable || wechatpay.RetryAfter(err) != tc.wantRetryAfter {
				t.Fatalf("error %v (retry after %v), want retryable HTTP %d after %v", err, wechatpay.RetryAfter(err), tc.wantStatus, tc.wantRetryAfter)
			}
			if _, err := client.InitiateUpload(context.Background(), req); err != nil {
				t.Fatalf("the retry after one injected fault: %v", err)
			}
			if n := srv.CountSucceeded(sandbox.EndpointInitiate); n != 1 {
				t.Fatalf("%d initiates processed, want 1 (the faulted call is not processed)", n)
			}
		})
	}
}

func TestLostResponse(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("a lost initiate answer is retryable, may have reached the server, and keeps the filename (TLS %v)", useTLS), func(t *testing.T) {
			srv, inst := startSandbox(t, useTLS)
			if err := srv.FailNext(sandbox.EndpointInitiate, 1, sandbox.FaultLostResponse); err != nil {
				t.Fatal(err)
			}
			client := newClient(t, inst, credsA(t))
			req := initiateFor("lost.csv", csvFile(10))
			_, err := client.InitiateUpload(context.Background(), req)
			if wechatpay.Classify(err) != wechatpay.Retryable || !wechatpay.MayHaveReachedServer(err) {
				t.Fatalf("error %v: class %v, may have reached %v", err, wechatpay.Classify(err), wechatpay.MayHaveReachedServer(err))
			}
			if n := srv.CountSucceeded(sandbox.EndpointInitiate); n != 1 {
				t.Fatalf("%d initiates processed, want 1", n)
			}
			if rec := srv.Records()[0]; rec.Fault != sandbox.FaultLostResponse || rec.Status != 200 || rec.UploadID == "" {
				t.Fatalf("record %+v, want a processed initiate marked lost_response", rec)
			}
			_, err = client.InitiateUpload(context.Background(), req)
			var api *wechatpay.APIError
			if !errors.As(err, &api) || api.Code != "INVALID_REQUEST" || !strings.Contains(api.Message, "lost.csv") {
				t.Fatalf("retry: %v, want INVALID_REQUEST naming lost.csv", err)
			}
		})
	}
}

func TestRandomFaultsRepeatWithTheSameSeed(t *testing.T) {
	outcomes := func() string {
		_, inst := startSandbox(t, false, func(c *sandbox.Config) {
			c.Seed = 42
			c.Faults = map[sandbox.Endpoint]sandbox.Faults{sandbox.EndpointMerge: {SystemErrorPercent: 30, UnavailablePercent: 20}}
		})
		client := newClient(t, inst, credsA(t))
		var b strings.Builder
		for range 20 {
			_, err := client.MergeParts(context.Background(), "unknown-upload")
			var api *wechatpay.APIError
			errors.As(err, &api)
			fmt.Fprintf(&b, "%d ", api.StatusCode)
		}
		return b.String()
	}
	first, second := outcomes(), outcomes()
	if first != second {
		t.Fatalf("seed 42 gave %s then %s", first, second)
	}
	if !strings.Contains(first, "500") || !strings.Contains(first, "404") {
		t.Fatalf("20 calls at 50%% faults gave %s, want a mix of 500 and 404", first)
	}
}

func TestLatencyMakesTheClientTimeOut(t *testing.T) {
	srv, inst := startSandbox(t, false)
	if err := srv.SetFaults(sandbox.EndpointMerge, sandbox.Faults{LatencyMillis: 300}); err != nil {
		t.Fatal(err)
	}
	client := newClient(t, inst, credsA(t), func(c *wechatpay.Config) { c.Timeout = 50 * time.Millisecond })
	_, err := client.MergeParts(context.Background(), "unknown-upload")
	var transport *wechatpay.TransportError
	if !errors.As(err, &transport) || wechatpay.Classify(err) != wechatpay.Retryable {
		t.Fatalf("error %v, want a retryable timeout", err)
	}
}

func TestAdminEndpointsScriptFaults(t *testing.T) {
	_, inst := startSandbox(t, false)
	hc := httpClient(t, inst)
	resp, err := hc.Post(inst.URL+"/sandbox/faults/expand/next", "application/json", strings.NewReader(`{"count":1,"fault":"unavailable"}`))
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("scripting a fault: %v %v", resp, err)
	}
	req, _ := http.NewRequest("PUT", inst.URL+"/sandbox/faults/merge", strings.NewReader(`{"rateLimitPercent":100,"retryAfterSeconds":3}`))
	if resp, err := hc.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("setting random faults: %v %v", resp, err)
	}
	if resp, _ := hc.Post(inst.URL+"/sandbox/faults/nope/next", "application/json", strings.NewReader(`{"count":1,"fault":"unavailable"}`)); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("an unknown endpoint: %d", resp.StatusCode)
	}
	client := newClient(t, inst, credsA(t))
	_, err = client.ExpandPackage(context.Background(), "01000100010000000007", "any")
	var api *wechatpay.APIError
	if !errors.As(err, &api) || api.StatusCode != 503 {
		t.Fatalf("expand: %v, want the scripted 503", err)
	}
	if _, err := client.MergeParts(context.Background(), "any"); wechatpay.RetryAfter(err) != 3*time.Second {
		t.Fatalf("merge: %v, want a 429 with Retry-After 3", err)
	}
	records := string(getAdmin(t, inst, "/sandbox/records"))
	for _, secret := range []string{"WECHATPAY-BRAND", "signature", "Authorization"} {
		if strings.Contains(records, secret) {
			t.Fatalf("records reveal %q: %s", secret, records)
		}
	}
}
