// Command mutants completes and reports a gremlins run over the plugin (make mutation).
//
// gremlins runs only the mutants that the test coverage profile covers, and Go's profile leaves out
// the conditions of switch cases and the values of constants: gremlins reports those mutants as
// NOT COVERED, although the tests run that code. This command applies each such mutant to a copy of
// the plugin itself, with the same operator change gremlins would make, and runs the compiled tests
// on it. It then prints, per file, how many mutants the tests killed and how many lived, leaving out
// the mutants docs/mutation.md lists as equivalent, and lists every other survivor.
//
// Usage: go run . -repo ../.. -results gremlins.json -equivalent ../../docs/mutation.md file.go...
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// results is the part of gremlins' JSON output that this command reads.
type results struct {
	Files []struct {
		Name      string   `json:"file_name"`
		Mutations []mutant `json:"mutations"`
	} `json:"files"`
}

type mutant struct {
	Type   string `json:"type"`
	Status string `json:"status"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
	file   string
	text   string // the trimmed source line, which names the mutant in docs/mutation.md
}

func (m mutant) key() string { return fmt.Sprintf("%s|%s|%d|%s", m.file, m.Type, m.Column, m.text) }

// swaps are the operator changes of gremlins' mutators, by mutator type.
var swaps = map[string]map[string]string{
	"CONDITIONALS_BOUNDARY": {"<": "<=", "<=": "<", ">": ">=", ">=": ">"},
	"CONDITIONALS_NEGATION": {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">"},
	"INVERT_LOGICAL":        {"&&": "||", "||": "&&"},
	"ARITHMETIC_BASE":       {"+": "-", "-": "+", "*": "/", "/": "*", "%": "*"},
	"INCREMENT_DECREMENT":   {"++": "--", "--": "++"},
	"INVERT_NEGATIVES":      {"-": "+"},
	"INVERT_LOOPCTRL":       {"break": "continue", "continue": "break"},
}

func main() {
	repo := flag.String("repo", "../..", "the plugin repository")
	resultsPath := flag.String("results", "", "gremlins' JSON output (-o)")
	equivalentPath := flag.String("equivalent", "", "the document that lists equivalent mutants")
	timeout := flag.Duration("timeout", 3*time.Minute, "bound on one test run")
	workers := flag.Int("workers", 2, "test runs at once")
	flag.Parse()
	targets := map[string]bool{}
	for _, f := range flag.Args() {
		targets[f] = true
	}
	if err := run(*repo, *resultsPath, *equivalentPath, targets, *timeout, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "mutants:", err)
		os.Exit(1)
	}
}

func run(repo, resultsPath, equivalentPath string, targets map[string]bool, timeout time.Duration, workers int) error {
	raw, err := os.ReadFile(resultsPath)
	if err != nil {
		return err
	}
	var res results
	if err := json.Unmarshal(raw, &res); err != nil {
		return fmt.Errorf("%s: %w", resultsPath, err)
	}
	equivalent, err := readEquivalent(equivalentPath)
	if err != nil {
		return err
	}
	var all []mutant
	for _, f := range res.Files {
		if !targets[f.Name] {
			continue
		}
		lines, err := readLines(filepath.Join(repo, f.Name))
		if err != nil {
			return err
		}
		for _, m := range f.Mutations {
			m.file = f.Name
			if m.Line-1 < len(lines) {
				m.text = strings.TrimSpace(lines[m.Line-1])
			}
			all = append(all, m)
		}
	}
	var pending []int
	for i, m := range all {
		if m.Status == "NOT COVERED" {
			pending = append(pending, i)
		}
	}
	fmt.Printf("gremlins ran %d mutants; running the %d it reports as not covered\n", len(all)-len(pending), len(pending))
	var wg sync.WaitGroup
	jobs := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				all[i].Status = runMutant(repo, all[i], timeout)
			}
		}()
	}
	for _, i := range pending {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return report(all, equivalent, targets)
}

// runMutant applies m to a copy of the plugin and runs the compiled tests on it.
func runMutant(repo string, m mutant, timeout time.Duration) string {
	dir, err := os.MkdirTemp("", "mutant-")
	if err != nil {
		return "ERROR"
	}
	defer os.RemoveAll(dir)
	if err := copyPlugin(repo, dir); err != nil {
		return "ERROR"
	}
	path := filepath.Join(dir, m.file)
	lines, err := readLines(path)
	if err != nil || m.Line-1 >= len(lines) {
		return "ERROR"
	}
	line := lines[m.Line-1]
	mutated, ok := mutateAt(line, m.Column-1, swaps[m.Type])
	if !ok {
		return "NOT VIABLE"
	}
	lines[m.Line-1] = mutated
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return "ERROR"
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	vet := exec.CommandContext(ctx, "go", "vet", "-tags", "nointerp", ".")
	vet.Dir = dir
	if vet.Run() != nil {
		return "NOT VIABLE"
	}
	test := exec.CommandContext(ctx, "go", "test", "-tags", "nointerp", "-count=1", "-failfast", ".")
	test.Dir = dir
	err = test.Run()
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return "TIMED OUT"
	case err != nil:
		return "KILLED"
	}
	return "LIVED"
}

// mutateAt replaces the operator that starts at byte col of line by its swap, longest first.
func mutateAt(line string, col int, swap map[string]string) (string, bool) {
	if col < 0 || col >= len(line) {
		return "", false
	}
	ops := make([]string, 0, len(swap))
	for op := range swap {
		ops = append(ops, op)
	}
	sort.Slice(ops, func(i, j int) bool { return len(ops[i]) > len(ops[j]) })
	for _, op := range ops {
		if strings.HasPrefix(line[col:], op) {
			return line[:col] + swap[op] + line[col+len(op):], true
		}
	}
	return "", false
}

// copyPlugin copies the plugin package (its .go files, test files included, and go.mod/go.sum).
func copyPlugin(repo, dst string) error {
	entries, err := os.ReadDir(repo)
	if err != nil {
		return err
	}
	for _, e := range entries {
		n := e.Name()
		if !e.Type().IsRegular() || !(strings.HasSuffix(n, ".go") || n == "go.mod" || n == "go.sum" || n == ".traefik.yml") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(repo, n))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, n), b, 0o644); err != nil {
			return err
		}
	}
	testdata := filepath.Join(repo, "testdata")
	if _, err := os.Stat(testdata); err == nil {
		return os.CopyFS(filepath.Join(dst, "testdata"), os.DirFS(testdata))
	}
	return nil
}

// readEquivalent reads the table rows of docs/mutation.md: | file | mutator | column | `line` | reason |.
func readEquivalent(path string) (map[string]string, error) {
	out := map[string]string{}
	if path == "" {
		return out, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		// A cell writes "|" as "\\|" (markdown): keep those apart from the cell separators.
		row := strings.ReplaceAll(sc.Text(), `\|`, "\x00")
		cells := strings.Split(row, "|")
		// The scores table has rows that begin with a file too: a mutator names the row.
		if len(cells) < 7 || !strings.HasSuffix(strings.TrimSpace(cells[1]), ".go") || !isMutator(strings.TrimSpace(cells[2])) {
			continue
		}
		var col int
		if _, err := fmt.Sscan(strings.TrimSpace(cells[3]), &col); err != nil {
			continue
		}
		text := strings.Trim(strings.TrimSpace(cells[4]), "`")
		text = strings.ReplaceAll(text, "\x00", "|")
		m := mutant{file: strings.TrimSpace(cells[1]), Type: strings.TrimSpace(cells[2]), Column: col, text: text}
		out[m.key()] = strings.TrimSpace(cells[5])
	}
	return out, sc.Err()
}

// isMutator reports whether s is spelt as gremlins names its mutators: CONDITIONALS_BOUNDARY.
func isMutator(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if (r < 'A' || r > 'Z') && r != '_' {
			return false
		}
	}
	return true
}

// staleRows lists, sorted, the equivalent rows of the mutated files that matched no living
// mutant: only a run of its file can tell that a row went stale.
func staleRows(equivalent map[string]string, used, targets map[string]bool) []string {
	var stale []string
	for k := range equivalent {
		if !used[k] && targets[strings.SplitN(k, "|", 2)[0]] {
			stale = append(stale, k)
		}
	}
	sort.Strings(stale)
	return stale
}

func readLines(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"), nil
}

// report prints the table per file and the survivors, and fails when a file is under 95%.
func report(all []mutant, equivalent map[string]string, targets map[string]bool) error {
	type tally struct{ killed, lived, equivalent, timedOut, notViable int }
	per := map[string]*tally{}
	var survivors []mutant
	used := map[string]bool{}
	for f := range targets {
		per[f] = &tally{}
	}
	for _, m := range all {
		t := per[m.file]
		switch m.Status {
		case "KILLED":
			t.killed++
		case "LIVED":
			if _, ok := equivalent[m.key()]; ok {
				t.equivalent++
				used[m.key()] = true
				continue
			}
			t.lived++
			survivors = append(survivors, m)
		case "TIMED OUT":
			t.timedOut++
		case "NOT VIABLE":
			t.notViable++
		default:
			t.lived++
			survivors = append(survivors, m)
		}
	}
	files := make([]string, 0, len(per))
	for f := range per {
		files = append(files, f)
	}
	sort.Strings(files)
	fmt.Printf("\n%-16s %7s %6s %11s %10s %11s %7s\n", "file", "killed", "lived", "equivalent", "timed out", "not viable", "score")
	failed := false
	var sumK, sumL int
	for _, f := range files {
		t := per[f]
		// A mutant that hangs the tests is caught: CI would fail on the timeout.
		caught := t.killed + t.timedOut
		score := 100.0
		if caught+t.lived > 0 {
			score = 100 * float64(caught) / float64(caught+t.lived)
		}
		failed = failed || score < 95
		sumK += caught
		sumL += t.lived
		fmt.Printf("%-16s %7d %6d %11d %10d %11d %6.1f%%\n", f, t.killed, t.lived, t.equivalent, t.timedOut, t.notViable, score)
	}
	fmt.Printf("%-16s %7d %6d %36s %6.1f%%\n", "all (killed + timed out)", sumK, sumL, "", 100*float64(sumK)/float64(max(1, sumK+sumL)))
	sort.Slice(survivors, func(i, j int) bool {
		if survivors[i].file != survivors[j].file {
			return survivors[i].file < survivors[j].file
		}
		return survivors[i].Line < survivors[j].Line
	})
	if len(survivors) > 0 {
		fmt.Println("\nLived, and not listed as equivalent in docs/mutation.md:")
		for _, m := range survivors {
			fmt.Printf("  %s:%d:%d %s  %s\n", m.file, m.Line, m.Column, m.Type, m.text)
		}
	}
	if stale := staleRows(equivalent, used, targets); len(stale) > 0 {
		fmt.Println("\nListed as equivalent but not seen living (the code changed?):")
		for _, k := range stale {
			fmt.Println("  " + k)
		}
	}
	if failed {
		return errors.New("a file scores under 95%")
	}
	return nil
}
