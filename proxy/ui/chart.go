package ui

import (
	"strconv"
	"strings"
)

// Chart geometry: the SVG's viewBox; the page stretches it.
const (
	chartW = 300
	chartH = 60
)

// chart is one small time series drawn as an inline SVG polyline. The
// page draws it from Points at load, and app.js replaces Points from the
// stats event; neither needs script in the markup.
type chart struct {
	ID     string `json:"id"`
	Title  string `json:"-"`
	Points string `json:"points"`
	Max    uint64 `json:"max"`
}

// newChart scales vals (oldest first) into the chart's box, the largest
// value at the top (a flat line at the bottom when all are zero).
func newChart(id, title string, vals []uint64) chart {
	c := chart{ID: id, Title: title}
	for _, v := range vals {
		c.Max = max(c.Max, v)
	}
	scale := float64(c.Max)
	if scale == 0 {
		scale = 1
	}
	var b strings.Builder
	b.Grow(len(vals) * 12)
	for i, v := range vals {
		x := 0.0
		if len(vals) > 1 {
			x = float64(i) * chartW / float64(len(vals)-1)
		}
		y := chartH - 1 - float64(v)/scale*(chartH-2)
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatFloat(x, 'f', 1, 64))
		b.WriteByte(',')
		b.WriteString(strconv.FormatFloat(y, 'f', 1, 64))
	}
	c.Points = b.String()
	return c
}
