package main

import (
	"bytes"
	"testing"
)

func TestTheImageIsTheSameBytesForTheSameInputs(t *testing.T) {
	o := options{version: "v0.2.0", repository: "registry.example.com/crowdpack", arch: "amd64"}
	manager, roots := []byte("\x7fELF manager"), []byte("-----BEGIN CERTIFICATE-----\n")
	first, err := build(o, manager, roots)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		change  func(o *options, manager *[]byte)
		changed bool
	}{
		{name: "built again from the same inputs, it is the same image", change: func(*options, *[]byte) {}},
		{name: "another version is another image", change: func(o *options, _ *[]byte) { o.version = "v0.2.1" }, changed: true},
		{name: "another manager is another image", change: func(_ *options, m *[]byte) { *m = []byte("\x7fELF other") }, changed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o2, m2 := o, bytes.Clone(manager)
			tt.change(&o2, &m2)
			again, err := build(o2, m2, roots)
			if err != nil {
				t.Fatal(err)
			}
			if changed := !bytes.Equal(first, again); changed != tt.changed {
				t.Errorf("changed = %v, want %v", changed, tt.changed)
			}
		})
	}
}
