// The dashboard's only script: refresh the view, and send the cancel and retry buttons' POSTs
// (a button names what it acts on: data-kind "jobs" or "workflows", and data-id).
// The server renders every fragment with HTML escaping; this swaps parsed nodes in and never
// builds markup from data.
"use strict";

(function () {
  const view = document.getElementById("view");
  const notice = document.getElementById("notice");
  const live = document.getElementById("live");
  const csrf = document.querySelector('meta[name="csrf-token"]');
  if (!view) return;
  const url = view.dataset.refresh;
  const everyMs = 1000 * Number(view.dataset.refreshS || 2);

  function say(text, bad) {
    notice.textContent = text;
    notice.className = bad ? "error" : "";
  }

  async function refresh() {
    try {
      const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (response.status === 401) {
        window.location.assign("/ui/login");
        return;
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      const parsed = new DOMParser().parseFromString(await response.text(), "text/html");
      view.replaceChildren(...parsed.body.childNodes);
      live.className = "live";
      live.dataset.updated = String(Date.now());
    } catch (error) {
      live.className = "live stale";
    }
  }

  async function act(button) {
    const action = button.dataset.action;
    const kind = button.dataset.kind === "workflows" ? "workflows" : "jobs";
    button.disabled = true;
    try {
      const response = await fetch(
        "/ui/" + kind + "/" + encodeURIComponent(button.dataset.id) + "/" +
          encodeURIComponent(action),
        {
          method: "POST",
          credentials: "same-origin",
          headers: { "X-CSRF-Token": csrf ? csrf.content : "" },
        },
      );
      const body = await response.json().catch(() => ({}));
      say(body.message || action + ": HTTP " + response.status, !response.ok);
    } catch (error) {
      say(action + " failed: " + error, true);
    }
    await refresh();
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (button) act(button);
  });

  let timer = null;
  function schedule() {
    timer = window.setTimeout(async () => {
      if (!document.hidden) await refresh();
      schedule();
    }, everyMs);
  }
  schedule();
})();
