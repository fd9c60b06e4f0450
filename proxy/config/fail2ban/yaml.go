package fail2ban

import (
	"fmt"
	"strconv"
	"strings"

	"gatehouse/proxy/config/internal/yamlout"
	"gatehouse/signer"

	"go.yaml.in/yaml/v3"
)

// Node is the watch entry as YAML (an item of the watch list), with its
// source and notes as a comment.
func (w ImportedWatch) Node() *yaml.Node {
	m := yamlout.NewMapping()
	x := w.Watch
	m.Add("name", yamlout.Scalar(x.Name))
	switch f := x.Filter; {
	case f.Builtin != "":
		m.Add("filter", yamlout.Scalar(f.Builtin))
		if x.Mode != "" {
			m.Add("mode", yamlout.Scalar(x.Mode))
		}
	default:
		fm := yamlout.NewMapping()
		fm.Add("failregex", yamlout.Strs(false, f.FailRegex))
		if len(f.IgnoreRegex) > 0 {
			fm.Add("ignoreregex", yamlout.Strs(false, f.IgnoreRegex))
		}
		if f.PrefRegex != "" {
			fm.Add("prefregex", yamlout.Scalar(f.PrefRegex))
		}
		if f.DatePattern != "" {
			fm.Add("datepattern", yamlout.Scalar(f.DatePattern))
		}
		m.Add("filter", fm.N)
	}
	if len(x.Files) > 0 {
		m.Add("files", yamlout.Strs(true, x.Files))
	}
	if j := x.Journal; j != nil {
		jm := yamlout.NewMapping()
		if len(j.Units) > 0 {
			jm.Add("units", yamlout.Strs(true, j.Units))
		}
		if len(j.Identifiers) > 0 {
			jm.Add("identifiers", yamlout.Strs(true, j.Identifiers))
		}
		jm.N.Style = yaml.FlowStyle
		m.Add("journal", jm.N)
	}
	m.Add("jail", yamlout.Scalar(x.Jail))
	m.N.HeadComment = strings.Join(append([]string{"[" + x.Name + "], " + w.Src.String()}, w.Notes...), "\n")
	return m.N
}

// Node is the jail's limits as YAML (the value of jails.NAME).
func (j ImportedJail) Node() *yaml.Node {
	m := yamlout.NewMapping()
	m.Add("maxretry", yamlout.Number(strconv.Itoa(j.Jail.MaxRetry)))
	m.Add("findtime", yamlout.Scalar(signer.FormatDuration(j.Jail.FindTime.D())))
	m.Add("bantime", yamlout.Scalar(signer.FormatDuration(j.Jail.BanTime.D())))
	if inc := j.Jail.Increment; inc != nil {
		im := yamlout.NewMapping()
		im.Add("factor", yamlout.Number(strconv.FormatFloat(inc.Factor, 'f', -1, 64)))
		if inc.Max > 0 {
			im.Add("max", yamlout.Scalar(signer.FormatDuration(inc.Max.D())))
		}
		im.N.Style = yaml.FlowStyle
		m.Add("increment", im.N)
	}
	m.N.Style = yaml.FlowStyle
	return m.N
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
	root := yamlout.NewMapping()
	root.Add("state_dir", yamlout.Scalar(StateDir), "read positions, offence counts and bans survive restarts here")
	if len(im.Allow) > 0 {
		n := &yaml.Node{Kind: yaml.SequenceNode}
		for _, a := range im.Allow {
			v := yamlout.Scalar(a.Prefix.String())
			v.LineComment = "ignoreip, " + a.Src.String()
			n.Content = append(n.Content, v)
		}
		root.Add("allow", n, "never counted by a jail nor banned (fail2ban ignoreip)")
	}
	if len(im.Watches) > 0 {
		n := &yaml.Node{Kind: yaml.SequenceNode}
		for _, w := range im.Watches {
			n.Content = append(n.Content, w.Node())
		}
		root.Add("watch", n, "the logs fail2ban's jails read, judged by the same filters")
		jm := yamlout.NewMapping()
		for _, j := range im.Jails {
			jm.Add(j.Name, j.Node(), j.Comment())
		}
		root.Add("jails", jm.N)
	}
	if f := im.Firewall; f != nil {
		fm := yamlout.NewMapping()
		fm.Add("backend", yamlout.Scalar(f.Backend))
		if len(f.Ports) > 0 {
			ps := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
			for _, p := range f.Ports {
				ps.Content = append(ps.Content, yamlout.Number(strconv.Itoa(p)))
			}
			fm.Add("ports", ps)
		}
		root.Add("firewall", fm.N, "banaction, "+f.Src.String()+" (needs CAP_NET_ADMIN)")
	}
	if m := im.Mail; m != nil {
		root.Add("notify", m.Node(), "action, "+m.Src.String()+" (jails "+strings.Join(m.Jails, ", ")+"): a mail per ban, or a digest")
	}
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root.N}}
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
	em := yamlout.NewMapping()
	smtp := yamlout.Scalar("localhost:25")
	smtp.LineComment = "fail2ban used the local sendmail: set the SMTP server (STARTTLS is required)"
	em.Add("smtp", smtp)
	sender := yamlout.Scalar(m.From)
	if m.FromSrc != (Pos{}) {
		sender.LineComment = "sender, " + m.FromSrc.String()
	}
	em.Add("from", sender)
	to := yamlout.Strs(true, m.To)
	if m.ToSrc != (Pos{}) {
		to.LineComment = "destemail, " + m.ToSrc.String()
	}
	em.Add("to", to)
	nm := yamlout.NewMapping()
	nm.Add("email", em.N)
	return nm.N
}
