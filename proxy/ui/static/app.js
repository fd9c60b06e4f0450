// gatehouse dashboard: live updates over Server-Sent Events.
//
// The pages are complete without this file; it only keeps them current.
// Everything it writes into the page goes through textContent or
// setAttribute on numbers, never through HTML parsing: paths, user agents
// and reasons come from attackers.
"use strict";

(function () {
  var page = document.body.getAttribute("data-page");
  if (!page || page === "login" || page === "error") {
    return;
  }
  var live = document.getElementById("live");
  function state(text, cls) {
    if (live) {
      live.textContent = text;
      live.className = "live " + cls;
    }
  }

  var url = "/ui/events?page=" + encodeURIComponent(page);
  var offences = document.getElementById("offences");
  if (offences) {
    url += "&since=" + encodeURIComponent(offences.getAttribute("data-seq") || "0");
  }
  var es = new EventSource(url);
  es.addEventListener("open", function () { state("live", "on"); });
  es.addEventListener("error", function () {
    state(es.readyState === EventSource.CLOSED ? "offline" : "reconnecting…", "off");
  });
  es.addEventListener("signedout", function () {
    es.close();
    window.location.assign("/ui/login");
  });

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) {
      e.textContent = String(text);
    }
    if (cls) {
      e.className = cls;
    }
    return e;
  }

  function setStats(stats) {
    Object.keys(stats).forEach(function (key) {
      document.querySelectorAll('[data-stat="' + key + '"]').forEach(function (n) {
        n.textContent = stats[key];
      });
    });
  }

  // Overview: numbers, charts and bans by jail.
  es.addEventListener("stats", function (ev) {
    var d = JSON.parse(ev.data);
    setStats(d.stats || {});
    (d.charts || []).forEach(function (c) {
      var fig = document.querySelector('[data-chart="' + c.id + '"]');
      if (!fig) {
        return;
      }
      var line = fig.querySelector("polyline");
      if (line) {
        line.setAttribute("points", c.points);
      }
      var max = fig.querySelector("[data-max]");
      if (max) {
        max.textContent = String(c.max);
      }
    });
    var jails = document.getElementById("jails");
    if (jails && d.jails) {
      var rows = d.jails.map(function (j) {
        var tr = el("tr");
        tr.appendChild(el("td", j.name));
        tr.appendChild(el("td", j.active, "num"));
        return tr;
      });
      jails.replaceChildren.apply(jails, rows);
    }
  });

  // Bans: new bans appear at the top of the first page; lifted and
  // expired ones disappear from any page.
  var bans = document.getElementById("bans");
  function banRow(b) {
    var tr = el("tr", null, "fresh");
    tr.setAttribute("data-ip", b.ip);
    tr.appendChild(el("td", b.ip, "ip"));
    tr.appendChild(el("td", b.jail));
    tr.appendChild(el("td", b.reason, "text"));
    tr.appendChild(el("td", b.since));
    var until = el("td", b.left);
    until.setAttribute("title", b.until);
    tr.appendChild(until);
    tr.appendChild(el("td", b.count, "num"));
    if (bans.getAttribute("data-write") === "1") {
      var td = el("td");
      var form = el("form");
      form.method = "post";
      form.action = "/ui/bans/delete";
      [["csrf", bans.getAttribute("data-csrf")], ["back", location.pathname + location.search], ["ip", b.ip]].forEach(function (kv) {
        var input = el("input");
        input.type = "hidden";
        input.name = kv[0];
        input.value = kv[1];
        form.appendChild(input);
      });
      var button = el("button", "Unban", "unban");
      button.type = "submit";
      form.appendChild(button);
      td.appendChild(form);
      tr.appendChild(td);
    }
    return tr;
  }
  function findRow(body, ip) {
    var rows = body.querySelectorAll("tr[data-ip]");
    for (var i = 0; i < rows.length; i++) {
      if (rows[i].getAttribute("data-ip") === ip) {
        return rows[i];
      }
    }
    return null;
  }
  es.addEventListener("ban", function (ev) {
    if (!bans) {
      return;
    }
    var d = JSON.parse(ev.data);
    var body = bans.tBodies[0];
    var old = findRow(body, d.ban.ip);
    if (old) {
      old.remove();
    }
    var livePage = bans.getAttribute("data-live") === "1";
    var total = document.querySelector('[data-stat="total"]');
    if (livePage && total) {
      // Of all bans: a new ban adds one (a ban replacing one not on
      // this page is counted twice until the next load), a lifted or
      // expired one takes one away.
      var n = parseInt(total.textContent, 10) + (d.op === "added" ? (old ? 0 : 1) : -1);
      total.textContent = String(Math.max(n, 0));
    }
    if (d.op === "added" && livePage) {
      var empty = body.querySelector("tr.empty");
      if (empty) {
        empty.remove();
      }
      body.insertBefore(banRow(d.ban), body.firstChild);
      while (body.rows.length > 50) {
        body.deleteRow(body.rows.length - 1);
      }
    }
  });
  es.addEventListener("resync", function () {
    var note = document.getElementById("resync");
    if (note) {
      note.hidden = false;
    }
  });

  // Offences: the latest at the top; top lists refreshed.
  es.addEventListener("offence", function (ev) {
    if (!offences) {
      return;
    }
    var o = JSON.parse(ev.data);
    var body = offences.tBodies[0];
    var empty = body.querySelector("tr.empty");
    if (empty) {
      empty.remove();
    }
    var tr = el("tr", null, "fresh");
    tr.appendChild(el("td", o.time, "time"));
    tr.appendChild(el("td", o.ip, "ip"));
    tr.appendChild(el("td", o.host, "text"));
    tr.appendChild(el("td", o.method));
    tr.appendChild(el("td", o.path, "text path"));
    tr.appendChild(el("td", o.kind));
    tr.appendChild(el("td", o.rule, "text"));
    tr.appendChild(el("td", o.ua, "text ua"));
    body.insertBefore(tr, body.firstChild);
    while (body.rows.length > 100) {
      body.deleteRow(body.rows.length - 1);
    }
  });
  function fillTop(id, entries, keyClass) {
    var body = document.getElementById(id);
    if (!body) {
      return;
    }
    var rows = entries.map(function (e) {
      var tr = el("tr");
      tr.appendChild(el("td", e.key, keyClass));
      tr.appendChild(el("td", e.count, "num"));
      return tr;
    });
    if (rows.length === 0) {
      var tr = el("tr");
      var td = el("td", "none", "muted");
      td.colSpan = 2;
      tr.appendChild(td);
      rows.push(tr);
    }
    body.replaceChildren.apply(body, rows);
  }
  es.addEventListener("top", function (ev) {
    var d = JSON.parse(ev.data);
    fillTop("top-paths", d.paths || [], "text");
    fillTop("top-nets", d.nets || [], "ip");
  });

  window.addEventListener("pagehide", function () { es.close(); });
}());
