/* DealDocs document templates: the editor's live preview (the template as typed, filled with a
   real record, shown in a sandboxed frame: the company's HTML runs no script and cannot reach our
   pages), placeholders inserted at the cursor, the line of a mistake shown; and, in the numbering
   table, the number the next document would get. Plain JavaScript, no build step. */
(function () {
  "use strict";

  var DEBOUNCE_MS = 600;
  // A srcdoc frame takes its parent's policy, not the preview response's: say it again inside.
  var FRAME_POLICY = "<meta http-equiv=\"Content-Security-Policy\" " +
    "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">";

  function withPolicy(html) {
    return /<head>/i.test(html) ? html.replace(/<head>/i, "<head>" + FRAME_POLICY) : FRAME_POLICY + html;
  }

  /* [start, end) of line `line` (from 1) in `text`. */
  function lineRange(text, line) {
    var start = 0;
    for (var n = 1; n < line; n += 1) {
      var next = text.indexOf("\n", start);
      if (next < 0) break;
      start = next + 1;
    }
    var end = text.indexOf("\n", start);
    return [start, end < 0 ? text.length : end];
  }

  /* Select the line in the textarea and scroll it into view. */
  function goToLine(area, line) {
    var range = lineRange(area.value, line);
    var lineHeight = parseFloat(window.getComputedStyle(area).lineHeight) || 18;
    area.focus();
    area.setSelectionRange(range[0], range[1]);
    area.scrollTop = Math.max(0, (line - 3) * lineHeight);
    area.scrollIntoView({block: "nearest"});
  }

  function setupEditor(form) {
    var text = form.dataset;
    var frame = form.querySelector("[data-preview-frame]");
    var status = form.querySelector("[data-preview-status]");
    var problem = form.querySelector("[data-preview-problem]");
    var problemText = form.querySelector("[data-preview-message]");
    var showLine = form.querySelector("[data-show-line]");
    var appliesTo = form.querySelector("[data-applies-to]");
    var typedId = form.querySelector("[data-record-id]");
    var lastArea = form.querySelector("textarea[data-part=body_html]");
    var timer = null, sequence = 0, problemAt = null;

    function area(part) {
      return form.querySelector("textarea[data-part=\"" + part + "\"]");
    }

    /* Placeholders and records of the kind of record the template is for. */
    function showKind() {
      form.querySelectorAll("[data-placeholders-for]").forEach(function (group) {
        group.hidden = group.dataset.placeholdersFor !== appliesTo.value;
      });
      form.querySelectorAll("[data-records-for]").forEach(function (picker) {
        picker.hidden = picker.dataset.recordsFor !== appliesTo.value;
      });
    }

    function recordId() {
      if (typedId.value.trim()) return typedId.value.trim();
      var picker = form.querySelector("[data-records-for=\"" + appliesTo.value + "\"] select");
      return picker ? picker.value : "";
    }

    function markPart(part) {
      form.querySelectorAll("[data-part-field]").forEach(function (field) {
        field.classList.toggle("has-error", field.dataset.partField === part);
      });
    }

    function showProblem(message, part, line) {
      problemText.textContent = message;
      problemAt = part && line && area(part) ? {part: part, line: line} : null;
      showLine.hidden = !problemAt;
      showLine.textContent = text.msgShowLine;
      problem.hidden = false;
      markPart(part);
      status.textContent = "";
    }

    function clearProblem() {
      problem.hidden = true;
      problemAt = null;
      markPart(null);
    }

    function show(html, mine) {
      clearProblem();
      frame.srcdoc = withPolicy(html);
      frame.dataset.updated = String(mine);
      status.textContent = text.msgUpdated;
    }

    function refresh() {
      var id = recordId();
      if (!id) {
        status.textContent = text.msgNoRecord;
        return;
      }
      var body = new URLSearchParams(new FormData(form));
      body.set("record_id", id);
      var mine = sequence += 1;
      status.textContent = text.msgUpdating;
      fetch(text.previewUrl, {method: "POST", body: body, credentials: "same-origin",
                              headers: {"Accept": "text/html, application/json"}})
        .then(function (response) {
          var json = (response.headers.get("Content-Type") || "").indexOf("application/json") === 0;
          return (json ? response.json() : response.text()).then(function (answer) {
            return {ok: response.ok, json: json, answer: answer};
          });
        })
        .then(function (result) {
          if (mine !== sequence) return;  // a newer preview is on its way
          if (result.ok && !result.json) {
            show(result.answer, mine);
          } else if (result.json && result.answer.message) {
            showProblem(result.answer.message, result.answer.part, result.answer.line);
          } else {
            showProblem(text.msgFailed);
          }
        })
        .catch(function () {
          if (mine === sequence) showProblem(text.msgFailed);
        });
    }

    function schedule() {
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, DEBOUNCE_MS);
    }

    function insert(expression) {
      var start = lastArea.selectionStart, end = lastArea.selectionEnd;
      lastArea.focus();
      lastArea.setRangeText(expression, start, end, "end");
      lastArea.dispatchEvent(new Event("input", {bubbles: true}));
    }

    form.addEventListener("focusin", function (event) {
      if (event.target.matches("textarea[data-part]")) lastArea = event.target;
    });
    form.querySelectorAll("[data-insert]").forEach(function (button) {
      button.addEventListener("click", function () { insert(button.dataset.insert); });
    });
    form.addEventListener("input", schedule);
    form.addEventListener("change", function (event) {
      if (event.target === appliesTo) showKind();
      schedule();
    });
    showLine.addEventListener("click", function () {
      if (problemAt) goToLine(area(problemAt.part), problemAt.line);
    });

    var failed = form.querySelector("textarea[data-error-line]");  // a save refused by the check
    if (failed) goToLine(failed, parseInt(failed.dataset.errorLine, 10));
    showKind();
    refresh();
  }

  /* The numbering table: the number a pattern gives, as numbering.format_number does. */
  function formatNumber(pattern, value, today) {
    var pad = function (number, width) { return String(number).padStart(width, "0"); };
    return pattern.replace(/\{(YYYY|YY|MM|DD|#+)\}/g, function (match, name) {
      if (name.charAt(0) === "#") return pad(value, name.length);
      return {YYYY: pad(today.getFullYear(), 4), YY: pad(today.getFullYear() % 100, 2),
              MM: pad(today.getMonth() + 1, 2), DD: pad(today.getDate(), 2)}[name];
    });
  }

  function setupNumbering(row) {
    var pattern = row.querySelector("[data-number-pattern]");
    var next = row.querySelector("[data-number-next]");
    var output = row.querySelector("[data-number-preview]");
    function update() {
      var value = parseInt(next.value, 10);
      output.textContent = value >= 1 && /\{#+\}/.test(pattern.value)
        ? formatNumber(pattern.value.trim(), value, new Date()) : "—";
    }
    pattern.addEventListener("input", update);
    next.addEventListener("input", update);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-template-editor]").forEach(setupEditor);
    document.querySelectorAll("tr[data-numbering]").forEach(setupNumbering);
  });
})();
