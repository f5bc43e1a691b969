// Datasets page: generate from a preset and follow the job's progress. The post answers either with the
// form again (HTML: the tool's problems beside their fields) or with an SSE stream of progress events, then
// `result` (a summary as HTML) or `error`; EventSource cannot post, so the stream is read from fetch().
(function () {
  "use strict";

  const csrf = document.querySelector('meta[name="csrf-token"]');

  // Split a text/event-stream body into events as it arrives ({event, data}); comments (pings) are skipped.
  async function* events(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = "message";
        const data = [];
        block.split("\n").forEach((line) => {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        });
        if (data.length) yield { event: name, data: data.join("\n") };
      }
    }
  }

  function showProgress(form, fraction, message) {
    const bar = form.querySelector("progress");
    if (fraction == null) bar.removeAttribute("value");
    else bar.value = Math.max(0, Math.min(1, fraction));
    bar.textContent = fraction == null ? "" : Math.round(bar.value * 100) + " %";
    form.querySelector("#gen-status").textContent = message;
  }

  function swapForm(form, html) {
    const template = document.createElement("template");
    template.innerHTML = html;
    const fresh = template.content.querySelector("#generate-form");
    if (!fresh) return false;
    form.replaceWith(fresh);
    const invalid = fresh.querySelector('[aria-invalid="true"]');
    if (invalid) invalid.focus();
    return true;
  }

  function fail(form, message) {
    const box = form.querySelector("#gen-outcome");
    box.innerHTML = "";
    const alert = document.createElement("p");
    alert.className = "error form-error";
    alert.setAttribute("role", "alert");
    alert.textContent = message;
    box.appendChild(alert);
  }

  async function generate(form) {
    const button = form.querySelector('button[type="submit"]');
    const panel = form.querySelector(".generate-progress");
    button.disabled = true;
    form.setAttribute("aria-busy", "true");
    form.querySelector("#gen-outcome").innerHTML = "";
    panel.hidden = false;
    showProgress(form, 0, "Starting…");
    try {
      const response = await fetch(form.action, {
        method: "POST", body: new FormData(form), credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf ? csrf.content : "", "Accept": "text/event-stream" },
      });
      const type = response.headers.get("content-type") || "";
      if (!type.startsWith("text/event-stream")) {
        const text = await response.text();
        if (response.ok && swapForm(form, text)) return;
        const page = new DOMParser().parseFromString(text, "text/html");
        const said = page.querySelector("main p, .error");
        fail(form, "The server refused (" + response.status + "): " + (said ? said.textContent.trim() : response.statusText));
        return;
      }
      let finished = false;
      for await (const item of events(response)) {
        if (item.event === "progress") {
          const p = JSON.parse(item.data);
          showProgress(form, p.total ? p.done / p.total : null, p.message || "");
        } else if (item.event === "result") {
          finished = true;
          showProgress(form, 1, "Done.");
          form.querySelector("#gen-outcome").innerHTML = item.data;
          document.body.dispatchEvent(new CustomEvent("qd-refresh"));
        } else if (item.event === "error") {
          finished = true;
          showProgress(form, 0, "Failed.");
          fail(form, item.data);
        }
      }
      if (!finished) fail(form, "The connection ended before the dataset was ready; its job may still finish (see the list).");
    } catch (error) {
      fail(form, "Could not reach the server: " + error.message);
    } finally {
      button.disabled = false;
      form.removeAttribute("aria-busy");
    }
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!form.matches || !form.matches("form[data-generate]")) return;
    event.preventDefault();
    generate(form);
  });

  // The chosen preset's description under the select.
  document.addEventListener("change", (event) => {
    const select = event.target;
    if (select.id !== "gen-preset") return;
    const help = document.getElementById("gen-preset-help");
    const option = select.selectedOptions[0];
    if (help && option) help.textContent = option.dataset.description || "";
  });
})();
