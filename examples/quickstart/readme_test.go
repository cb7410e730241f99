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
