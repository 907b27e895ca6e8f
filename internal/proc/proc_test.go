package proc

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/ambient-code/tokend/test/testkit"
)

// The test binary doubles as the processes started: with helperEnv set,
// TestMain runs the helper instead of the tests. "exit N" exits N;
// "middle" starts a "linger" process, prints "orphan PID" and exits,
// orphaning it; "linger" exits when its stdin ends, so after its parent.
const helperEnv = "PROC_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "exit":
		code, _ := strconv.Atoi(os.Args[1])
		os.Exit(code)
	case "middle":
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), helperEnv+"=linger")
		if _, err := cmd.StdinPipe(); err != nil { // closed when this process exits
			os.Exit(2)
		}
		if err := cmd.Start(); err != nil {
			os.Exit(2)
		}
		fmt.Printf("orphan %d\n", cmd.Process.Pid)
		os.Exit(0)
	case "linger":
		bufio.NewReader(os.Stdin).ReadString(0)
		os.Exit(0)
	}
}

func helper(t *testing.T, mode string, out *os.File, args ...string) *Process {
	t.Helper()
	p, err := Start(append([]string{os.Args[0]}, args...), append(os.Environ(), helperEnv+"="+mode), nil, out, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDoneCarriesTheExitStatus(t *testing.T) {
	for _, adopt := range []bool{false, true} {
		t.Run(fmt.Sprintf("adopt=%v", adopt), func(t *testing.T) {
			if adopt {
				defer Adopt(nil)()
			}
			p := helper(t, "exit", nil, "7")
			ws := testkit.Await(t, "the exit status", p.Done())
			if code := ExitCode(ws); code != 7 {
				t.Errorf("exit code %d, want 7", code)
			}
			if GroupExists(p.Pid) {
				t.Errorf("group %d exists after its only member was reaped", p.Pid)
			}
		})
	}
}

// TestAdoptReapsOrphans: while adopted, a process whose parent exits is
// re-parented to this one and reaped (tokend as PID 1, or exec's child
// subreaper): five orphans, no zombie.
func TestAdoptReapsOrphans(t *testing.T) {
	reaped := make(chan int, 8)
	defer Adopt(func(pid int) { reaped <- pid })()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	lines := bufio.NewScanner(r)
	var orphans []int
	for range 5 {
		p := helper(t, "middle", w)
		if !lines.Scan() {
			t.Fatal("no orphan reported")
		}
		pid, err := strconv.Atoi(strings.TrimPrefix(lines.Text(), "orphan "))
		if err != nil {
			t.Fatalf("middle printed %q", lines.Text())
		}
		testkit.Await(t, "the middle process to exit", p.Done())
		orphans = append(orphans, pid)
	}
	for len(orphans) > 0 {
		pid := testkit.Await(t, "an orphan to be reaped", reaped)
		for i, o := range orphans {
			if o == pid {
				orphans = append(orphans[:i], orphans[i+1:]...)
				break
			}
		}
	}
	for _, pid := range orphans {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			t.Errorf("orphan %d is still there (a zombie)", pid)
		}
	}
}

func TestStartNamesAMissingProgram(t *testing.T) {
	_, err := Start([]string{"tokend-no-such-program"}, nil, nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "give the full path") {
		t.Errorf("error %v", err)
	}
}

func TestSignalGroupOfNoMemberIsNotAnError(t *testing.T) {
	p := helper(t, "exit", nil, "0")
	testkit.Await(t, "the exit", p.Done())
	if err := SignalGroup(p.Pid, syscall.SIGTERM); err != nil {
		t.Errorf("SignalGroup of an empty group: %v", err)
	}
}
