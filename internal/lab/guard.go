//go:build linux

package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ErrOutsideLab is returned, without running anything, for a command that
// is not confined to one of the lab's own namespaces.
var ErrOutsideLab = errors.New("lab: refusing to run a command outside the lab's own namespaces")

// cmdTimeout bounds every short command (ip, nft, ss, initdb...).
const cmdTimeout = 60 * time.Second

// checkArgv accepts only these shapes, with ns accepted by owns:
//
//	ip netns add|del|pids <ns>
//	ip -n <ns> <anything>
//	ip netns exec <ns> <command...>
//
// Everything the lab runs goes through it, so an nft rule or a route can only
// ever be applied inside a lab namespace.
func checkArgv(argv []string, owns func(ns string) bool) error {
	bad := func() error { return fmt.Errorf("%w: %q", ErrOutsideLab, argv) }
	if len(argv) < 3 || filepath.Base(argv[0]) != "ip" {
		return bad()
	}
	switch {
	case argv[1] == "-n":
		if len(argv) >= 4 && owns(argv[2]) {
			return nil
		}
	case argv[1] == "netns":
		switch argv[2] {
		case "add", "del", "pids":
			if len(argv) == 4 && owns(argv[3]) {
				return nil
			}
		case "exec":
			if len(argv) >= 5 && owns(argv[3]) {
				return nil
			}
		}
	}
	return bad()
}

// runIP runs a checked ip command and returns its stdout. stdin, if not
// empty, is fed to the command.
func runIP(owns func(string) bool, stdin string, argv ...string) (string, error) {
	if err := checkArgv(argv, owns); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("lab: %s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
