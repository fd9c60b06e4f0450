package filter

import (
	"slices"
	"strings"
	"testing"
)

// TestBuiltinModes checks that every name Builtins lists compiles in every
// mode Modes lists, that "" is the default mode, and that unknown names
// and modes are refused.
func TestBuiltinModes(t *testing.T) {
	t.Parallel()
	names := Builtins()
	want := []string{"dovecot", "nginx-http-auth", "postfix", "proftpd", "recidive", "sshd", "vsftpd"}
	if !slices.Equal(names, want) {
		t.Fatalf("Builtins() = %q, want %q", names, want)
	}
	for _, name := range names {
		modes, def, ok := Modes(name)
		if !ok || len(modes) == 0 || !slices.Contains(modes, def) {
			t.Errorf("Modes(%q) = %q, %q, %v", name, modes, def, ok)
			continue
		}
		for _, m := range append(modes, "") {
			cfg, err := Builtin(name, m)
			if err != nil {
				t.Errorf("Builtin(%q, %q): %v", name, m, err)
				continue
			}
			if _, err := Compile(cfg); err != nil {
				t.Errorf("Compile(Builtin(%q, %q)): %v", name, m, err)
			}
		}
		def2, _ := Builtin(name, def)
		empty, _ := Builtin(name, "")
		if strings.Join(def2.FailRegex, "\n") != strings.Join(empty.FailRegex, "\n") || def2.PrefRegex != empty.PrefRegex {
			t.Errorf("Builtin(%q, \"\") is not Builtin(%q, %q)", name, name, def)
		}
		if units, ids := JournalMatch(name); len(units)+len(ids) == 0 {
			t.Errorf("JournalMatch(%q) selects nothing", name)
		}
	}
	if _, _, ok := Modes("ssh"); ok {
		t.Error(`Modes("ssh") ok, want not built in`)
	}
	if u, i := JournalMatch("ssh"); u != nil || i != nil {
		t.Errorf(`JournalMatch("ssh") = %q, %q, want nil`, u, i)
	}
	if _, err := Builtin("ssh", ""); err == nil || !strings.Contains(err.Error(), "built in: dovecot,") {
		t.Errorf(`Builtin("ssh") = %v, want the list of built-in filters`, err)
	}
	if _, err := Builtin("postfix", "sasl"); err == nil || !strings.Contains(err.Error(), `mode "sasl" is not one of more, normal`) {
		t.Errorf(`Builtin("postfix", "sasl") = %v, want the list of modes`, err)
	}
	m, _, _ := Modes("sshd")
	m[0] = "changed"
	if m2, _, _ := Modes("sshd"); m2[0] != "normal" {
		t.Error("Modes returns the package's own slice")
	}
}

// compileBuiltin compiles the built-in filter name in mode, its config
// first changed by edit when edit is not nil.
func compileBuiltin(tb testing.TB, name, mode string, edit func(*Config)) *Filter {
	tb.Helper()
	cfg, err := Builtin(name, mode)
	if err != nil {
		tb.Fatal(err)
	}
	if edit != nil {
		edit(&cfg)
	}
	f, err := Compile(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}
