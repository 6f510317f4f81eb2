// Live preview for the newsletter template editor: a progressive enhancement of the
// "Preview" button, which works without it. The rendered HTML goes into the sandboxed
// frame's srcdoc (no scripts run there), never into this page.
(function () {
  "use strict";
  const form = document.getElementById("template-form");
  const pane = document.getElementById("template-preview");
  if (!form || !pane || !window.fetch) return;
  const frame = pane.querySelector("iframe");
  const subject = pane.querySelector(".preview-subject");
  const text = pane.querySelector(".preview-text");
  const problems = pane.querySelector(".preview-problems");
  let timer = null;
  let sequence = 0;

  function show(data) {
    problems.replaceChildren(
      ...(data.problems || []).map(function (p) {
        const item = document.createElement("li");
        item.textContent = p;
        return item;
      })
    );
    if (data.html !== undefined) {
      subject.textContent = data.subject;
      frame.srcdoc = data.html;
      text.textContent = data.text;
    }
  }

  function refresh() {
    const mine = ++sequence;
    fetch(form.dataset.previewUrl, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) { return response.json(); })
      .then(function (data) { if (mine === sequence) show(data); })
      .catch(function () { /* the Preview button still works */ });
  }

  form.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, 400);
  });
})();
