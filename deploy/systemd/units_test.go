// Package systemd_test checks the unit files: `make install` puts them in a prefix,
// and systemd-analyze verify must accept every one, with its binary in place.
package systemd_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var units = map[string]string{ // unit file -> tool
	"pgqd.service":         "pgqd",
	"londisted@.service":   "londisted",
	"walmgrd@.service":     "walmgrd",
	"queue-mover@.service": "queue-mover",
	"dispatcher@.service":  "dispatcher",
}

// unitKeys reads "Key=value" lines of a unit file (later lines win, as in systemd).
func unitKeys(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: malformed line %q", path, line)
		}
		keys[k] = v
	}
	return keys
}

func TestMakeInstallAndSystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("PGTEST_REQUIRE") == "1" {
			t.Fatal("systemd-analyze not found (install the systemd package)")
		}
		t.Skip("systemd-analyze not found")
	}
	prefix := t.TempDir()
	etc := filepath.Join(prefix, "etc")
	cmd := exec.Command("make", "install", "PREFIX="+prefix, "SYSCONFDIR="+etc)
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	unitDir := filepath.Join(prefix, "lib/systemd/system")
	for file, tool := range units {
		t.Run(file, func(t *testing.T) {
			path := filepath.Join(unitDir, file)
			k := unitKeys(t, path)
			for key, want := range map[string]string{
				"Type":            "notify",
				"Restart":         "on-failure",
				"User":            "postgres",
				"NoNewPrivileges": "yes",
				"ProtectSystem":   "strict",
				"PrivateTmp":      "yes",
				"ExecReload":      "/bin/kill -HUP $MAINPID",
			} {
				if k[key] != want {
					t.Errorf("%s=%q, want %q", key, k[key], want)
				}
			}
			if k["WatchdogSec"] == "" {
				t.Error("no WatchdogSec")
			}
			config := etc + "/skytools/" + tool + "/%i.toml"
			if !strings.Contains(file, "@") {
				config = etc + "/skytools/" + tool + ".toml"
			}
			if want := filepath.Join(prefix, "bin", tool) + " -c " + config; k["ExecStart"] != want {
				t.Errorf("ExecStart=%q, want %q", k["ExecStart"], want)
			}
			if out, err := exec.Command(filepath.Join(prefix, "bin", tool), "--version").Output(); err != nil || !strings.HasPrefix(string(out), tool+" ") {
				t.Errorf("installed %s --version: %q %v", tool, out, err)
			}
			// Template units are verified through an instance name.
			instance := strings.Replace(file, "@.", "@verify.", 1)
			out, err := exec.Command(analyze, "verify", filepath.Join(unitDir, instance)).CombinedOutput()
			if err != nil {
				t.Fatalf("systemd-analyze verify %s: %v\n%s", instance, err, out)
			}
			if len(strings.TrimSpace(string(out))) > 0 {
				t.Errorf("systemd-analyze verify %s warns:\n%s", instance, out)
			}
		})
	}
	for _, d := range []string{"skytools/londisted", "skytools/walmgrd", "skytools/queue-mover", "skytools/dispatcher"} {
		if st, err := os.Stat(filepath.Join(etc, d)); err != nil || !st.IsDir() {
			t.Errorf("make install did not create %s: %v", d, err)
		}
	}
	if _, err := os.Stat(filepath.Join(prefix, "share/doc/skytools/examples/pgqd.toml")); err != nil {
		t.Errorf("example config not installed: %v", err)
	}
}
