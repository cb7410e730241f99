package main

import (
	"os"
	"strings"
	"testing"
)

// The README's quick start is this file, word for word: it compiles
// because this package does.
func TestREADMEQuickStartIsThisProgram(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	// The README shows the program from "package main" on.
	prog := string(src[strings.Index(string(src), "package main"):])
	if !strings.Contains(string(readme), "```go\n"+prog+"```\n") {
		t.Fatal("README.md's quick start differs from examples/quickstart/main.go (from \"package main\" on); copy it over")
	}
}

// The README's test command is the one CI runs: .ci/run's TEST_CMD, word
// for word, so the two cannot drift apart.
func TestREADMEQuotesTheCICommand(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	run, err := os.ReadFile("../../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "\nTEST_CMD='"
	i := strings.Index(string(run), prefix)
	if i < 0 {
		t.Fatal(".ci/run has no TEST_CMD='…' line")
	}
	cmd := string(run[i+len(prefix):])
	cmd = cmd[:strings.Index(cmd, "'\n")]
	if !strings.Contains(string(readme), "```sh\n"+cmd+"\n```\n") {
		t.Fatalf("README.md does not quote .ci/run's TEST_CMD in a sh block:\n%s", cmd)
	}
}

// The README is for users: it stays short (contributor and design detail
// live in docs/).
func TestREADMEIsShort(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(readme), "\n"); n > 200 {
		t.Fatalf("README.md has %d lines; keep it to 200 (move detail to docs/)", n)
	}
}
