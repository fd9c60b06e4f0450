package fail2ban

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gatehouse/proxy/config/internal/yamlout"
	"gatehouse/signer"

	"go.yaml.in/yaml/v3"
)

func scalar(v string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}
}

func number(v string) *yaml.Node {
	tag := "!!int"
	if strings.ContainsAny(v, ".e") {
		tag = "!!float"
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: v}
}

func strs(flow bool, vs []string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode}
	if flow {
		n.Style = yaml.FlowStyle
	}
	for _, v := range vs {
		n.Content = append(n.Content, scalar(v))
	}
	return n
}

// mapping is a YAML mapping built key by key.
type mapping struct{ n *yaml.Node }

func newMapping() mapping { return mapping{&yaml.Node{Kind: yaml.MappingNode}} }

// add appends key: value with an optional comment above the key.
func (m mapping) add(key string, value *yaml.Node, comment ...string) {
	k := scalar(key)
	k.Tag = ""
	k.HeadComment = strings.Join(slices.DeleteFunc(comment, func(s string) bool { return s == "" }), "\n")
	m.n.Content = append(m.n.Content, k, value)
}

// Node is the watch entry as YAML (an item of the watch list), with its
// source and notes as a comment.
func (w ImportedWatch) Node() *yaml.Node {
	m := newMapping()
	x := w.Watch
	m.add("name", scalar(x.Name))
	switch f := x.Filter; {
	case f.Builtin != "":
		m.add("filter", scalar(f.Builtin))
		if x.Mode != "" {
			m.add("mode", scalar(x.Mode))
		}
	default:
		fm := newMapping()
		fm.add("failregex", strs(false, f.FailRegex))
		if len(f.IgnoreRegex) > 0 {
			fm.add("ignoreregex", strs(false, f.IgnoreRegex))
		}
		if f.PrefRegex != "" {
			fm.add("prefregex", scalar(f.PrefRegex))
		}
		if f.DatePattern != "" {
			fm.add("datepattern", scalar(f.DatePattern))
		}
		m.add("filter", fm.n)
	}
	if len(x.Files) > 0 {
		m.add("files", strs(true, x.Files))
	}
	if j := x.Journal; j != nil {
		jm := newMapping()
		if len(j.Units) > 0 {
			jm.add("units", strs(true, j.Units))
		}
		if len(j.Identifiers) > 0 {
			jm.add("identifiers", strs(true, j.Identifiers))
		}
		jm.n.Style = yaml.FlowStyle
		m.add("journal", jm.n)
	}
	m.add("jail", scalar(x.Jail))
	m.n.HeadComment = strings.Join(append([]string{"[" + x.Name + "], " + w.Src.String()}, w.Notes...), "\n")
	return m.n
}

// Node is the jail's limits as YAML (the value of jails.NAME).
func (j ImportedJail) Node() *yaml.Node {
	m := newMapping()
	m.add("maxretry", number(strconv.Itoa(j.Jail.MaxRetry)))
	m.add("findtime", scalar(signer.FormatDuration(j.Jail.FindTime.D())))
	m.add("bantime", scalar(signer.FormatDuration(j.Jail.BanTime.D())))
	if inc := j.Jail.Increment; inc != nil {
		im := newMapping()
		im.add("factor", number(strconv.FormatFloat(inc.Factor, 'f', -1, 64)))
		if inc.Max > 0 {
			im.add("max", scalar(signer.FormatDuration(inc.Max.D())))
		}
		im.n.Style = yaml.FlowStyle
		m.add("increment", im.n)
	}
	m.n.Style = yaml.FlowStyle
	return m.n
}

// Comment is the comment written above the jail: its source and notes.
func (j ImportedJail) Comment() string {
	return strings.Join(append([]string{"[" + j.Name + "], " + j.Src.String()}, j.Notes...), "\n")
}

// StateDir is the state_dir an import writes: watch read positions,
// offence counts and bans survive restarts there.
const StateDir = "/var/lib/gatehouse"

// YAML writes the imported configuration as a gatehouse config: a
// comment naming each block's fail2ban file:line, and the findings at
// the end.
func (im *Imported) YAML() []byte {
	root := newMapping()
	root.add("state_dir", scalar(StateDir), "read positions, offence counts and bans survive restarts here")
	if len(im.Allow) > 0 {
		n := &yaml.Node{Kind: yaml.SequenceNode}
		for _, a := range im.Allow {
			v := scalar(a.Prefix.String())
			v.LineComment = "ignoreip, " + a.Src.String()
			n.Content = append(n.Content, v)
		}
		root.add("allow", n, "never counted by a jail nor banned (fail2ban ignoreip)")
	}
	if len(im.Watches) > 0 {
		n := &yaml.Node{Kind: yaml.SequenceNode}
		for _, w := range im.Watches {
			n.Content = append(n.Content, w.Node())
		}
		root.add("watch", n, "the logs fail2ban's jails read, judged by the same filters")
		jm := newMapping()
		for _, j := range im.Jails {
			jm.add(j.Name, j.Node(), j.Comment())
		}
		root.add("jails", jm.n)
	}
	if f := im.Firewall; f != nil {
		fm := newMapping()
		fm.add("backend", scalar(f.Backend))
		if len(f.Ports) > 0 {
			ps := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
			for _, p := range f.Ports {
				ps.Content = append(ps.Content, number(strconv.Itoa(p)))
			}
			fm.add("ports", ps)
		}
		root.add("firewall", fm.n, "banaction, "+f.Src.String()+" (needs CAP_NET_ADMIN)")
	}
	if m := im.Mail; m != nil {
		root.add("notify", m.Node(), "action, "+m.Src.String()+" (jails "+strings.Join(m.Jails, ", ")+"): a mail per ban, or a digest")
	}
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root.n}}
	dir := im.Dir
	if dir == "" {
		dir = "."
	}
	doc.HeadComment = "gatehouse config imported from " + dir + " by gatehouse import fail2ban\nEach block names the fail2ban file:line it came from."
	if len(im.Watches) == 0 {
		doc.HeadComment += "\nNo jail could be carried over: gatehouse check refuses a config with nothing to do."
	}
	if len(im.NotCarried) > 0 {
		foot := []string{"Not carried over:", ""}
		for _, f := range im.NotCarried {
			foot = append(foot, "  "+f.String())
		}
		doc.FootComment = strings.Join(foot, "\n")
	}
	out, err := yamlout.Encode(doc)
	if err != nil {
		// The tree holds strings and numbers only.
		panic(fmt.Sprintf("fail2ban: encode YAML: %v", err))
	}
	return out
}

// Node is notify (with its email block) as YAML.
func (m *ImportedMail) Node() *yaml.Node {
	em := newMapping()
	smtp := scalar("localhost:25")
	smtp.LineComment = "fail2ban used the local sendmail: set the SMTP server (STARTTLS is required)"
	em.add("smtp", smtp)
	sender := scalar(m.From)
	if m.FromSrc != (Pos{}) {
		sender.LineComment = "sender, " + m.FromSrc.String()
	}
	em.add("from", sender)
	to := strs(true, m.To)
	if m.ToSrc != (Pos{}) {
		to.LineComment = "destemail, " + m.ToSrc.String()
	}
	em.add("to", to)
	nm := newMapping()
	nm.add("email", em.n)
	return nm.n
}
