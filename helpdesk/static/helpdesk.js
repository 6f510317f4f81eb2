// Progressive enhancement for the agents' pages: keyboard shortcuts, presence, canned
// replies, select-all. Every action works without this file; it only saves keystrokes.
(function () {
  "use strict";

  var csrf = document.querySelector('meta[name="csrf-token"]');

  function typing(target) {
    var tag = target.tagName;
    return target.isContentEditable || tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT";
  }

  function activate(element) {
    if (element.tagName === "FORM") {
      element.requestSubmit();
    } else if (element.tagName === "A") {
      element.click();
    } else {
      element.focus();
      if (element.scrollIntoView) { element.scrollIntoView({ block: "center" }); }
    }
  }

  // -- ticket lists: j/k move the selection, o/Enter open, x ticks ----------------------
  var rows = Array.prototype.slice.call(document.querySelectorAll("[data-ticket-row]"));
  var current = -1;

  function select(index) {
    if (!rows.length) { return; }
    current = Math.max(0, Math.min(rows.length - 1, index));
    rows.forEach(function (row, i) { row.classList.toggle("table-active", i === current); });
    var link = rows[current].querySelector(".ticket-link");
    if (link) { link.focus(); }
  }

  function listKey(key) {
    if (!rows.length) { return false; }
    if (key === "j") { select(current + 1); return true; }
    if (key === "k") { select(current - 1); return true; }
    if ((key === "o" || key === "Enter") && current >= 0) {
      rows[current].querySelector(".ticket-link").click();
      return true;
    }
    if (key === "x" && current >= 0) {
      var box = rows[current].querySelector('input[type="checkbox"]');
      if (box) { box.checked = !box.checked; }
      return true;
    }
    return false;
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (typing(event.target)) {
      if (event.key === "Escape") { event.target.blur(); }
      return;
    }
    var key = event.key;
    if (key === "?") {
      var modal = document.getElementById("shortcuts");
      if (modal && window.bootstrap) {
        window.bootstrap.Modal.getOrCreateInstance(modal).show();
        event.preventDefault();
      }
      return;
    }
    if (listKey(key)) { event.preventDefault(); return; }
    var target = document.querySelector('[data-key="' + CSS.escape(key) + '"]');
    if (target) {
      event.preventDefault();
      activate(target);
    }
  });

  var selectAll = document.getElementById("select-all");
  if (selectAll) {
    selectAll.hidden = false;
    selectAll.addEventListener("change", function () {
      document.querySelectorAll('input[name="ticket"]').forEach(function (box) {
        box.checked = selectAll.checked;
      });
    });
  }

  // -- ticket page: who else is here, and did the ticket change -----------------------
  var page = document.querySelector("[data-presence-url]");
  if (page && csrf && window.fetch) {
    var presence = document.getElementById("presence");
    var banner = document.getElementById("changed-banner");
    var ping = function () {
      var body = new URLSearchParams();
      body.set("snapshot", page.getAttribute("data-snapshot"));
      fetch(page.getAttribute("data-presence-url"), {
        method: "POST",
        headers: { "X-CSRFToken": csrf.content },
        body: body,
        credentials: "same-origin"
      }).then(function (response) {
        return response.ok ? response.json() : null;
      }).then(function (data) {
        if (!data) { return; }
        presence.textContent = data.viewers.length ? "Also viewing: " + data.viewers.join(", ") : "";
        if (data.changes.length) {
          banner.textContent = "Changed since you opened it: " + data.changes.join("; ") +
            ". A reply sent now is held until you have seen this.";
          banner.hidden = false;
        }
      }).catch(function () { /* presence is a courtesy; the next ping tries again */ });
    };
    window.setInterval(ping, 1000 * Number(page.getAttribute("data-presence-seconds")));
  }

  // -- canned replies: insert at the cursor without reloading --------------------------
  var canned = document.getElementById("canned");
  var insert = document.querySelector('button[name="insert_canned"], input[name="insert_canned"]');
  var body = document.querySelector(".reply-body");
  if (canned && insert && body && window.fetch) {
    insert.addEventListener("click", function (event) {
      event.preventDefault();
      var url = canned.getAttribute("data-canned-url").replace(/\/0$/, "/" + canned.value);
      fetch(url, { credentials: "same-origin" }).then(function (response) {
        return response.json();
      }).then(function (data) {
        if (!data.text) { return; }
        var start = body.selectionStart, end = body.selectionEnd;
        body.value = body.value.slice(0, start) + data.text + body.value.slice(end);
        body.focus();
        body.selectionStart = body.selectionEnd = start + data.text.length;
      });
    });
  }

  // Marks the page as enhanced: the shortcuts above are listening from now on.
  document.documentElement.setAttribute("data-enhanced", "");
})();
