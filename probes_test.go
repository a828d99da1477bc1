package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestAManagerWaitingForTheAPIServerIsAliveButNotReady: while the API
// server does not answer, /healthz says ok and /readyz says why not; once
// it answers, the wait ends and the probe address is free for the manager.
func TestAManagerWaitingForTheAPIServerIsAliveButNotReady(t *testing.T) {
	addr := freeAddr(t)
	var up atomic.Bool
	check := func(*http.Request) error {
		if !up.Load() {
			return errors.New("connection refused")
		}
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- waitForAPIServer(context.Background(), check, addr) }()

	waitStatus(t, "http://"+addr+"/healthz", http.StatusOK)
	waitStatus(t, "http://"+addr+"/readyz", http.StatusServiceUnavailable)
	up.Store(true)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("waitForAPIServer: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("waitForAPIServer did not return once the API server answered")
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the probe address is still taken after the wait: %v", err)
	}
	l.Close()
}

func TestAWaitForTheAPIServerEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := waitForAPIServer(ctx, func(*http.Request) error { return errors.New("no route to host") }, "0")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waitForAPIServer = %v, want the context's deadline", err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitStatus(t *testing.T, url string, want int) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(url)
		if err != nil {
			last = err.Error()
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == want {
			return
		}
		last = fmt.Sprint(resp.StatusCode)
	}
	t.Fatalf("%s: got %s, want %d", url, last, want)
}
