package sandbox_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/crowdpack/crowdpack/internal/sandbox"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// TestAHookSeesEveryCallAndCanDropOne: a call a hook drops on arrival is
// never processed nor recorded (the filename stays free); the others are
// seen on arrival and once answered.
func TestAHookSeesEveryCallAndCanDropOne(t *testing.T) {
	srv, inst := startSandbox(t, false)
	c := newClient(t, inst, credsA(t))
	file := csvFile(100)
	var mu sync.Mutex
	var seen []sandbox.Phase
	drop := true
	srv.SetHook(func(e sandbox.Endpoint, _ sandbox.Record, phase sandbox.Phase) bool {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, phase)
		dropped := drop && phase == sandbox.PhaseArrived
		drop = false
		return dropped
	})

	_, err := c.InitiateUpload(context.Background(), initiateFor("hooked.csv", file))
	if !wechatpay.MayHaveReachedServer(err) {
		t.Fatalf("a dropped call answered %v, want a transport error", err)
	}
	if n := len(srv.Records()); n != 0 {
		t.Errorf("%d records of a dropped call, want none", n)
	}
	if _, err := c.InitiateUpload(context.Background(), initiateFor("hooked.csv", file)); err != nil {
		t.Fatalf("the filename of a dropped call was taken: %v", err)
	}
	want := []sandbox.Phase{sandbox.PhaseArrived, sandbox.PhaseArrived, sandbox.PhaseAnswered}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(seen, want) {
		t.Errorf("phases seen %v, want %v", seen, want)
	}
}
