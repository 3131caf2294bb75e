/* BrandForge review queue: keyboard review (j/k/x/a/r/g/e), claims, bulk decisions. */
(() => {
  "use strict";

  const root = document.getElementById("bf-queue");
  if (!root) return;
  const csrf = root.querySelector("input[name=csrfmiddlewaretoken]").value;
  const claimUrl = (id) => root.dataset.claimUrl.replace("/0/", `/${id}/`);
  const decideUrl = root.dataset.decideUrl;
  const statusBox = document.getElementById("bf-status");
  const rejectDialog = document.getElementById("bf-reject-dialog");
  const editDialog = document.getElementById("bf-edit-dialog");
  let current = null;

  const cards = () => Array.from(root.querySelectorAll(".bf-card:not(.is-done)"));
  const open = () => cards().filter((card) => !card.classList.contains("is-claimed"));

  function say(message, ok = true) {
    statusBox.textContent = message;
    statusBox.className = ok ? "is-ok" : "is-error";
  }

  async function post(url, data) {
    const body = new URLSearchParams(data);
    const response = await fetch(url, {
      method: "POST",
      body,
      headers: { "X-CSRFToken": csrf, "X-Requested-With": "fetch" },
      credentials: "same-origin",
    });
    let payload = {};
    try {
      payload = await response.json();
    } catch {
      payload = { ok: false, message: `The server answered ${response.status}.` };
    }
    return payload;
  }

  function showReferences(card) {
    root.querySelectorAll(".bf-refs").forEach((refs) => {
      refs.hidden = !card || refs.dataset.brand !== card.dataset.brand;
    });
  }

  async function focusCard(card) {
    if (!card || card === current) return;
    const previous = current;
    if (previous) {
      previous.classList.remove("is-current");
      post(claimUrl(previous.dataset.item), { release: "1" });
    }
    current = card;
    card.classList.add("is-current");
    card.focus({ preventScroll: true });
    card.scrollIntoView({ block: "nearest", behavior: "smooth" });
    showReferences(card);
    const result = await post(claimUrl(card.dataset.item), {});
    if (!result.ok && card === current) {
      // Another editor took it meanwhile: mark it and move on.
      card.classList.add("is-claimed");
      say(result.message, false);
      move(1);
    }
  }

  function move(step) {
    const list = open();
    if (!list.length) {
      current = null;
      showReferences(null);
      say(`${statusBox.textContent} Nothing left to review on this page.`.trim());
      return;
    }
    const index = list.indexOf(current);
    const next = index < 0 ? 0 : Math.min(Math.max(index + step, 0), list.length - 1);
    focusCard(list[next]);
  }

  function selected() {
    return open().filter((card) => card.querySelector(".bf-check").checked);
  }

  function updateSelection() {
    document.getElementById("bf-selected").textContent = `${selected().length} selected`;
  }

  async function decide(targets, action, extra = {}) {
    if (!targets.length) return;
    const data = new URLSearchParams({ action, ...extra });
    targets.forEach((card) => data.append("items", card.dataset.item));
    targets.forEach((card) => card.classList.add("is-busy"));
    const result = await post(decideUrl, data);
    targets.forEach((card) => card.classList.remove("is-busy"));
    if (!result.results) {
      say(result.message, false);
      return;
    }
    const wasCurrent = targets.includes(current);
    const messages = [];
    for (const row of result.results) {
      const card = document.getElementById(`item-${row.id}`);
      if (row.ok && card) {
        card.classList.remove("is-current");
        card.classList.add("is-done", `is-${action}`);
        card.hidden = true;
      }
      messages.push(row.message);
    }
    say(messages.join(" "), result.ok);
    updateSelection();
    if (wasCurrent) {
      current = null;
      move(0);
    }
  }

  function ask(dialog, field, initial) {
    return new Promise((resolve) => {
      const input = dialog.querySelector(field);
      input.value = initial;
      dialog.returnValue = "";
      dialog.addEventListener(
        "close",
        () => resolve(dialog.returnValue === "ok" ? input.value.trim() : null),
        { once: true },
      );
      dialog.showModal();
      input.focus();
      input.select();
    });
  }

  async function reject(targets) {
    const reason = await ask(rejectDialog, "#bf-reason", "");
    if (reason) decide(targets, "reject", { reason });
    else if (reason === "") say("A rejection needs a reason; nothing was changed.", false);
  }

  async function editAndRegenerate(card) {
    const initial = card.querySelector(".bf-prompt-source").value;
    const prompt = await ask(editDialog, "#bf-prompt", initial);
    if (prompt) decide([card], "regenerate", { prompt, reason: "Prompt edited by the editor." });
  }

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest("input, textarea, select, dialog")) return;
    const actions = {
      j: () => move(1),
      k: () => move(-1),
      x: () => {
        if (!current) return;
        const box = current.querySelector(".bf-check");
        box.checked = !box.checked;
        updateSelection();
      },
      a: () => current && decide([current], "approve"),
      r: () => current && reject([current]),
      g: () => current && decide([current], "regenerate", { reason: "New seed asked for." }),
      e: () => current && editAndRegenerate(current),
    };
    const run = actions[event.key];
    if (run) {
      event.preventDefault();
      run();
    }
  });

  root.addEventListener("click", (event) => {
    const card = event.target.closest(".bf-card");
    if (card && !card.classList.contains("is-claimed") && !event.target.closest("a, input")) {
      focusCard(card);
    }
    const bulk = event.target.closest("[data-bulk]");
    if (bulk) {
      const targets = selected();
      if (!targets.length) say("Select cards first (x, or the boxes).", false);
      else if (bulk.dataset.bulk === "reject") reject(targets);
      else decide(targets, "approve");
    }
  });
  root.addEventListener("change", (event) => {
    if (event.target.matches(".bf-check")) updateSelection();
  });
  // The claim lapses by itself, but giving it back at once lets a colleague take the item.
  window.addEventListener("pagehide", () => {
    if (current) {
      const data = new URLSearchParams({ release: "1", csrfmiddlewaretoken: csrf });
      navigator.sendBeacon(claimUrl(current.dataset.item), data);
    }
  });

  move(0);
})();
