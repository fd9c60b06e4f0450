package signer

import "testing"

func TestRedactSignatures(t *testing.T) {
	t.Parallel()
	const sig = "74QNC3Te0aRBpil2XyHr-75zirE676673NDIhKETqnA"
	tests := []struct {
		name, in, want string
	}{
		{name: "no parameter", in: "/paid/a.mp4?t=10", want: "/paid/a.mp4?t=10"},
		{name: "link", in: "/paid/a.mp4?gh_expires=1900003600&gh_signature=" + sig,
			want: "/paid/a.mp4?gh_expires=1900003600&gh_signature=[redacted]"},
		{name: "link then query", in: "https://media.example.com/paid/a.mp4?gh_signature=" + sig + "&t=10#x",
			want: "https://media.example.com/paid/a.mp4?gh_signature=[redacted]&t=10#x"},
		{name: "twice", in: "?gh_signature=" + sig + "&gh_signature=" + sig,
			want: "?gh_signature=[redacted]&gh_signature=[redacted]"},
		{name: "nested, encoded once", in: "/login?next=%2Fpaid%2Fa.mp4%3Fgh_expires%3D1%26gh_signature%3D" + sig + "%26t%3D1",
			want: "/login?next=%2Fpaid%2Fa.mp4%3Fgh_expires%3D1%26gh_signature%3D[redacted]%26t%3D1"},
		{name: "nested, encoded twice", in: "?u=gh_signature%253d" + sig, want: "?u=gh_signature%253d[redacted]"},
		{name: "empty value", in: "?gh_signature=&a=1", want: "?gh_signature=&a=1"},
		{name: "name without separator", in: "?gh_signature&a=" + sig, want: "?gh_signature&a=" + sig},
		{name: "name inside another", in: "?xgh_signature=abc", want: "?xgh_signature=[redacted]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := RedactSignatures(tc.in); got != tc.want {
				t.Errorf("RedactSignatures(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
