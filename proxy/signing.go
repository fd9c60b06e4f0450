package proxy

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"gatehouse/proxy/admin"
	"gatehouse/proxy/config"
	"gatehouse/rules/match"
	"gatehouse/signer"
)

// NewSigning builds the signers cfg configures, for the admin API's
// /v1/sign endpoints and `gatehouse sign -c FILE`. Loading the AWS SDK's
// default config (when signer.s3 has no static credentials) reads local
// files only; credentials are fetched when a URL is first signed.
func NewSigning(ctx context.Context, cfg *config.File) (*admin.Signing, error) {
	var sc admin.SigningConfig
	if c := cfg.Signer.S3; c != nil {
		s3, err := signer.NewS3(ctx, signer.S3Config{
			Region:          c.Region,
			Endpoint:        c.Endpoint,
			PathStyle:       c.PathStyle,
			AccessKeyID:     c.AccessKeyID.Value(),
			SecretAccessKey: c.SecretAccessKey.Value(),
			MaxExpires:      c.MaxExpires.D(),
		})
		if err != nil {
			return nil, fmt.Errorf("signer.s3: %w", err)
		}
		sc.S3 = s3
	}
	if c := cfg.Signer.CloudFront; c != nil {
		key, err := signer.ParsePrivateKey([]byte(c.PrivateKey.Value()))
		if err != nil {
			return nil, fmt.Errorf("signer.cloudfront.private_key: %w", err)
		}
		domains := make([]string, len(c.Domains))
		for i, d := range c.Domains {
			domains[i] = d.String()
		}
		cf, err := signer.NewCloudFront(signer.CloudFrontConfig{
			KeyPairID:  c.KeyPairID,
			PrivateKey: key,
			Domains:    domains,
			MaxExpires: c.MaxExpires.D(),
		})
		if err != nil {
			return nil, fmt.Errorf("signer.cloudfront: %w", err)
		}
		sc.CloudFront = cf
	}
	sc.Links = make([]*admin.LinkHost, len(cfg.Hosts))
	for i, h := range cfg.Hosts {
		sl := h.SignedLinks
		if sl == nil {
			continue
		}
		field := fmt.Sprintf("hosts[%d].signed_links", i)
		secrets := sl.Keys
		if !sl.Key.IsZero() {
			secrets = []config.Secret{sl.Key}
		}
		keys := make([][]byte, len(secrets))
		for j, k := range secrets {
			keys[j] = []byte(k.Value())
		}
		links, err := signer.NewLinks(signer.LinkConfig{Keys: keys, BindIP: sl.BindIP, MaxExpires: sl.MaxExpires.D(),
			IgnoreQuery: sl.Query == config.SignedLinksQueryIgnore})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		paths, err := match.CompilePrefixes(sl.Paths)
		if err != nil {
			return nil, fmt.Errorf("%s.paths: %w", field, err)
		}
		lh := &admin.LinkHost{Field: field, Links: links, Paths: paths}
		for _, m := range h.Match {
			if m.Wildcard() {
				lh.Wildcard = append(lh.Wildcard, m.Name())
			} else {
				lh.Exact = append(lh.Exact, m.Name())
			}
		}
		sc.Links[i] = lh
	}
	return admin.NewSigning(sc), nil
}

// adminCurrent is what the admin listener needs of generation g.
func adminCurrent(g *generation) admin.Current {
	tokens := make([]admin.Token, len(g.cfg.Admin.Tokens))
	for i, t := range g.cfg.Admin.Tokens {
		tokens[i] = admin.Token{Name: t.Name, Secret: t.Token, Scopes: t.Scopes, Prefixes: signer.Prefixes(t.Prefixes)}
	}
	return admin.Current{
		Tokens:    tokens,
		JailNames: slices.Sorted(maps.Keys(g.cfg.Jails)),
		Jails:     g.jails,
		Signing:   g.signing,
	}
}
