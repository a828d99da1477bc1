package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// stateFile keeps the host's state from before a node, until its teardown
// has put it back: a node killed before then (SIGKILL) leaves it for the
// next one, which restores from it (cleanStale).
const stateFile = "/run/crowdpack-e2e-node.state.json"

// restore puts back what the node changed outside its folder.
func (h *hostState) restore() error {
	errs := []error{h.removeNetns(), removeLink(bridgeName), removeNewChains(h.Chains), h.restoreSysctls()}
	for _, d := range hostDirs {
		errs = append(errs, removeNew(d, h.Dirs[d]))
	}
	return errors.Join(errs...)
}

func (h *hostState) save() error {
	data, err := json.Marshal(h)
	if err != nil {
		return err
	}
	if err := os.WriteFile(stateFile, data, 0o600); err != nil {
		return fmt.Errorf("save the host's state: %w", err)
	}
	return nil
}

// loadHostState reads the state a killed node left; nil when there is none.
func loadHostState() (*hostState, error) {
	data, err := os.ReadFile(stateFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	h := &hostState{}
	if err := json.Unmarshal(data, h); err != nil {
		return nil, fmt.Errorf("%s: %w", stateFile, err)
	}
	return h, nil
}

func removeHostState() error {
	if err := os.Remove(stateFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
