// bruteguard dashboard: fills the tables from /events (server-sent events) and posts the
// actions with the session's CSRF token. Every value is set with textContent, never as
// markup: user names, reasons and hosts come from attackers.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;

function when(seconds) {
  if (seconds === null || seconds === undefined) return "-";
  return new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19) + "Z";
}

function span(seconds) {
  if (seconds === null || seconds === undefined) return "-";
  if (seconds < 120) return Math.round(seconds) + " s";
  if (seconds < 7200) return Math.round(seconds / 60) + " min";
  if (seconds < 172800) return Math.round(seconds / 3600) + " h";
  return Math.round(seconds / 86400) + " d";
}

function button(label, onClick) {
  const element = document.createElement("button");
  element.type = "button";
  element.textContent = label;
  element.addEventListener("click", onClick);
  return element;
}

// Replace the rows of table #id: each row a list of cells, each a text or an element.
function fill(id, rows) {
  const body = document.querySelector("#" + id + " tbody");
  const fresh = document.createElement("tbody");
  for (const cells of rows) {
    const row = fresh.insertRow();
    for (const cell of cells) {
      const td = row.insertCell();
      if (cell instanceof Node) td.appendChild(cell);
      else td.textContent = cell === null || cell === undefined ? "-" : String(cell);
    }
  }
  body.replaceWith(fresh);
}

function say(text, failed) {
  const message = document.getElementById("message");
  message.textContent = text;
  message.className = failed ? "error" : "ok";
}

async function act(path, body, done) {
  let reply;
  try {
    const response = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
    });
    reply = await response.json();
    if (!response.ok) throw new Error(reply.error || response.statusText);
  } catch (error) {
    say(error.message, true);
    return;
  }
  say(done(reply.result), false);
}

function unban(ip) {
  act("/api/unban", { ip: ip }, () => "unbanned " + ip);
}

function ban(ip, jail, duration) {
  act("/api/ban", { ip: ip, jail: jail, for: duration }, (r) => "banned " + r.ip + " in " + r.jail);
}

function send(id) {
  act("/api/send", { case: id }, (r) => "case " + r.case + ": " + r.state);
}

function render(s) {
  document.getElementById("daemon").textContent = "daemon: " + s.daemon;
  document.getElementById("active").textContent = String(s.active);
  document.getElementById("updated").textContent = when(s.now);
  fill("bans", s.bans.map((b) => [b.ip, b.jail, when(b.until), b.failures, b.step, b.reason,
    b.origin || "this host", button("Unban", () => unban(b.ip))]));
  fill("jails", s.jails.map((j) => [j.jail, j.per_minute.toFixed(1), j.last_hour, j.banned_now]));
  fill("sources", s.sources.map((x) => [x.jail, x.source, x.reading ? (x.lines === null ? "-" : x.lines) : "NOT READING",
    x.lag === null ? "none yet" : span(x.lag) + " ago",
    x.behind === null ? "-" : x.behind + " bytes"]));
  fill("attackers", s.attackers.map((a) => [a.ip, a.failures, when(a.last), a.jails,
    button("Ban", () => ban(a.ip, "", ""))]));
  fill("users", s.users.map((u) => [u[0], u[1]]));
  fill("failures", s.failures.map((f) => [when(f.time), f.ip, f.jail, f.user]));
  fill("recent", s.recent.map((b) => [b.ip, b.jail, when(b.start), when(b.until),
    b.lifted === null ? "-" : when(b.lifted), b.reason]));
  fill("cases", s.cases.map((c) => [c.id, c.kind, c.state, c.contact, c.addresses,
    when(c.opened), c.state === "draft" ? button("Send", () => send(c.id)) : ""]));
  const fleet = document.getElementById("fleet-section");
  fleet.hidden = s.fleet === null && !s.fleet_error;
  fill("fleet", s.fleet_error ? [[s.fleet_error, "", "", "", ""]]
    : (s.fleet || []).map((b) => [b.ip, b.origin, b.jail, when(b.until), b.reason]));
}

function refreshPlots() {
  for (const image of document.querySelectorAll("img.plot")) {
    image.src = "/plots/" + image.dataset.plot + ".svg?t=" + Date.now();
  }
}

document.getElementById("ban-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target;
  ban(form.ip.value.trim(), form.jail.value.trim(), form.for.value.trim());
});

const events = new EventSource("/events");
events.onmessage = (event) => render(JSON.parse(event.data));
events.onerror = () => {
  document.getElementById("daemon").textContent = "connection lost: reconnecting";
};
setInterval(refreshPlots, 60000);
