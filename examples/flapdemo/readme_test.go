package main

import (
	"bytes"
	"flag"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite README.md's demo block from this run of the demo")

const (
	readmePath  = "../../README.md"
	blockBegin  = "<!-- flapdemo output: written by `go test ./examples/flapdemo -run TestREADMEDemoOutput -update`; do not edit by hand -->\n"
	blockEnd    = "<!-- end of flapdemo output -->\n"
	demoCommand = "$ go run ./examples/flapdemo\n"
)

// The README shows the default command's output. This test runs the demo
// exactly as the README's command does (no flags), checks what the README
// claims about it, and compares the README's copy with this run. -update
// writes this run into the README instead.
//
// The comparison is honest but not flaky: durations, times and counts that
// vary from run to run become placeholders, except a count of 0, which
// stays 0 (so "flapguard: 0 of … failed" must still be 0, and plain's
// failures must still be more than 0); flapguard's own action lines are
// compared as the set of kinds that appear (their order and repeats depend
// on scheduling), every other line one for one.
func TestREADMEDemoOutput(t *testing.T) {
	skipWholeDemo(t)
	var out, errOut bytes.Buffer
	if code := run(t.Context(), nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, errOut.String())
	}
	got := out.String()
	checkDemoClaims(t, got)

	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	i := strings.Index(text, blockBegin)
	j := strings.Index(text, blockEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md has no demo block between %q and %q", blockBegin, blockEnd)
	}
	fresh := "```\n" + demoCommand + got + "```\n"
	if *update {
		text = text[:i+len(blockBegin)] + fresh + text[j:]
		if err := os.WriteFile(readmePath, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	old := text[i+len(blockBegin) : j]
	oldSkel, oldKinds := demoShape(old)
	newSkel, newKinds := demoShape(fresh)
	if !slices.Equal(oldKinds, newKinds) {
		t.Errorf("flapguard's actions in README.md: %q; in this run: %q\nrun: go test ./examples/flapdemo -run TestREADMEDemoOutput -update", oldKinds, newKinds)
	}
	if !slices.Equal(oldSkel, newSkel) {
		t.Errorf("README.md's demo output differs from this run (after normalising):\n%s\nthis run:\n%s\nrun: go test ./examples/flapdemo -run TestREADMEDemoOutput -update",
			strings.Join(oldSkel, "\n"), strings.Join(newSkel, "\n"))
	}
}

// checkDemoClaims: what the README says about the default run holds for
// this run: plain's failures appear live, before the table, and are the
// ones the summary counts; flapguard acts (one line per action) and fails
// nothing.
func checkDemoClaims(t *testing.T, out string) {
	t.Helper()
	table := strings.Index(out, "\n\n ")
	if table < 0 {
		t.Fatalf("no table:\n%s", out)
	}
	live, after := out[:table], out[table:]
	m := regexp.MustCompile(`(?m)^t=\S+  plain      FAILED: (\d+) requests? hung`).FindStringSubmatch(live)
	if m == nil {
		t.Fatalf("no live line for plain's failures before the table:\n%s", out)
	}
	if !strings.Contains(after, "\nplain:     "+m[1]+" of ") {
		t.Errorf("the summary does not count the %s requests announced live:\n%s", m[1], out)
	}
	if !regexp.MustCompile(`\nflapguard: 0 of \d+ requests failed, and it was back in `).MatchString(after) {
		t.Errorf("flapguard failed requests or was not back:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^t=\S+  flapguard  (sever|reset) `).MatchString(live) {
		t.Errorf("no line for flapguard's sever or reset:\n%s", out)
	}
	if strings.Contains(out, "…") {
		t.Errorf("a cut line:\n%s", out)
	}
}

var (
	durRE   = regexp.MustCompile(`\d+(\.\d+)?(µs|ms|s)\b`)
	numRE   = regexp.MustCompile(`\d+`)
	actRE   = regexp.MustCompile(`^t=(\S+|\s+-)\s+flapguard  (\S+)`)
	foldRE  = regexp.MustCompile(`^\s+\(the line above, `)
	spaceRE = regexp.MustCompile(` {2,}`)
)

// demoShape splits demo output into its normalised lines without
// flapguard's action lines, and the sorted kinds of those actions.
func demoShape(s string) (skeleton, kinds []string) {
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if m := actRE.FindStringSubmatch(l); m != nil && m[2] != "FAILED:" {
			if !slices.Contains(kinds, m[2]) {
				kinds = append(kinds, m[2])
			}
			continue
		}
		if foldRE.MatchString(l) {
			continue
		}
		l = durRE.ReplaceAllString(l, "‹t›")
		l = numRE.ReplaceAllStringFunc(l, func(n string) string {
			if n == "0" {
				return n
			}
			return "#"
		})
		// Columns move with the width of the numbers.
		skeleton = append(skeleton, spaceRE.ReplaceAllString(l, "  "))
	}
	slices.Sort(kinds)
	return skeleton, kinds
}

// demoShape keeps what the comparison must see and drops what varies.
func TestDemoShape(t *testing.T) {
	out := "t=   -   flapguard  probe gen=1\n" +
		"t=02.0s  status     plain 275 ok, 0 failed · flapguard 272 ok, 0 failed\n" +
		"t=05.7s  flapguard  sever gen=2 (path down) count=14\n" +
		"                    (the line above, 2 times more)\n" +
		"t=09.0s  plain      FAILED: 8 requests hung, no answer 3.0s after they started (deadline 2.0s)\n" +
		"t=09.1s  flapguard  FAILED: 1 request: returned an error\n" +
		"flapguard: 0 of 1161 requests failed, and it was back in 584µs (from its first request after UP).\n"
	skel, kinds := demoShape(out)
	wantSkel := []string{
		"t=‹t›  status  plain # ok, 0 failed · flapguard # ok, 0 failed",
		"t=‹t›  plain  FAILED: # requests hung, no answer ‹t› after they started (deadline ‹t›)",
		"t=‹t›  flapguard  FAILED: # request: returned an error",
		"flapguard: 0 of # requests failed, and it was back in ‹t› (from its first request after UP).",
	}
	if !slices.Equal(skel, wantSkel) {
		t.Errorf("skeleton:\n%s\nwant:\n%s", strings.Join(skel, "\n"), strings.Join(wantSkel, "\n"))
	}
	if !slices.Equal(kinds, []string{"probe", "sever"}) {
		t.Errorf("kinds = %q", kinds)
	}
}
