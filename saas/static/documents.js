/* DealDocs documents: drop or choose files, each streamed as the raw body of one POST with its
   own progress bar (no multipart: the server writes it to storage as it arrives), and what
   happened to each: uploaded, refused (with the server's reason), or already on the card (then
   offered as a new version of that document). Plain JavaScript, no build step. */
(function () {
  "use strict";

  function setup(widget) {
    var input = widget.querySelector("[data-documents-input]");
    var progress = widget.querySelector("[data-documents-progress]");
    var text = widget.dataset;
    var pending = 0, changed = false;

    function line(name) {
      var item = document.createElement("li");
      var label = document.createElement("span");
      label.textContent = name;
      var bar = document.createElement("progress");
      bar.max = 100;
      bar.value = 0;
      var status = document.createElement("div");
      item.append(label, bar, status);
      progress.append(item);
      return {item: item, bar: bar, status: status};
    }

    function link(href, label) {
      var a = document.createElement("a");
      a.href = href;
      a.textContent = label;
      return a;
    }

    function finished(ok) {
      changed = changed || ok;
      pending -= 1;
      if (pending > 0 || !changed) return;
      changed = false;
      if (text.reload) {
        window.location.reload();
      } else if (text.listUrl) {
        refreshList();
      }
    }

    function refreshList() {
      var list = document.querySelector("[data-documents-list]");
      fetch(text.listUrl, {credentials: "same-origin"}).then(function (response) {
        return response.ok ? response.text() : Promise.reject(response.status);
      }).then(function (html) {
        list.innerHTML = html;
      }).catch(function () { /* the list is as fresh as the last reload */ });
    }

    // POST the file as the request body to `url`; show the answer in `row`.
    function send(file, url, row) {
      var request = new XMLHttpRequest();
      pending += 1;
      row.bar.hidden = false;
      row.bar.value = 0;
      row.status.className = "";
      row.status.textContent = "";
      request.open("POST", url + (url.indexOf("?") < 0 ? "?" : "&") + "filename=" + encodeURIComponent(file.name));
      request.setRequestHeader("X-CSRFToken", text.csrf);
      request.setRequestHeader("Content-Type", "application/octet-stream");
      request.setRequestHeader("Accept", "application/json");
      request.upload.onprogress = function (event) {
        if (event.lengthComputable) row.bar.value = Math.round(event.loaded * 100 / event.total);
      };
      request.onload = function () {
        var answer = {};
        try { answer = JSON.parse(request.responseText); } catch (ignored) { /* not JSON: a generic message */ }
        row.bar.value = 100;
        row.bar.hidden = true;
        if (request.status === 201) {
          row.status.className = "is-done";
          row.status.append(text.msgDone + " ", link(answer.url, text.msgOpen));
          row.item.dataset.state = "done";
          finished(true);
          return;
        }
        row.status.className = "is-refused";
        row.status.textContent = answer.message || text.msgFailed;
        row.item.dataset.state = answer.error || "failed";
        if (answer.error === "quota_exceeded" && answer.plan_url) {
          row.status.append(" ", link(answer.plan_url, text.msgPlan));
        }
        if (answer.error === "duplicate" && answer.versions_url) {
          var again = document.createElement("button");
          again.type = "button";
          again.textContent = text.msgVersion.replace("{title}", answer.title);
          again.addEventListener("click", function () { send(file, answer.versions_url, row); });
          row.status.append(document.createElement("br"), again);
        }
        finished(false);
      };
      request.onerror = function () {
        row.bar.hidden = true;
        row.status.className = "is-refused";
        row.status.textContent = text.msgFailed;
        row.item.dataset.state = "failed";
        finished(false);
      };
      request.send(file);
    }

    function upload(files) {
      Array.prototype.forEach.call(files, function (file) { send(file, text.url, line(file.name)); });
    }

    input.addEventListener("change", function () {
      upload(input.files);
      input.value = "";
    });
    widget.addEventListener("dragover", function (event) {
      event.preventDefault();
      widget.classList.add("is-over");
    });
    widget.addEventListener("dragleave", function () { widget.classList.remove("is-over"); });
    widget.addEventListener("drop", function (event) {
      event.preventDefault();
      widget.classList.remove("is-over");
      upload(event.dataTransfer.files);
    });
  }

  document.querySelectorAll("[data-documents-upload]").forEach(setup);

  /* Generating from a template: the document appears on the card at once ("Generating…") and the
     list is read again every 1.5 s while any document on it is still being made. */
  var list = document.querySelector("[data-documents-list]");

  function refreshCardList() {
    if (!list || !list.dataset.listUrl) return Promise.resolve();
    return fetch(list.dataset.listUrl, {credentials: "same-origin"}).then(function (response) {
      return response.ok ? response.text() : Promise.reject(response.status);
    }).then(function (html) {
      list.innerHTML = html;
    });
  }

  var watching = false;
  function watchGenerating() {
    if (watching || !list || !list.querySelector("[data-generating]")) return;
    watching = true;
    setTimeout(function () {
      refreshCardList().catch(function () { /* try again on the next tick */ }).then(function () {
        watching = false;
        watchGenerating();
      });
    }, 1500);
  }

  document.querySelectorAll("[data-documents-generate]").forEach(function (form) {
    var status = form.querySelector("[data-documents-generate-status]");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = form.querySelector("button[type=submit]");
      button.disabled = true;
      status.className = "doc-generate-status";
      status.textContent = "";
      fetch(form.action, {method: "POST", body: new FormData(form), credentials: "same-origin",
                          headers: {"Accept": "application/json"}}).then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (answer) {
          if (response.status !== 202) {
            status.className = "doc-generate-status is-refused";
            status.textContent = answer.message || form.dataset.msgFailed;
            if (answer.error === "quota_exceeded" && answer.plan_url) {
              var plan = document.createElement("a");
              plan.href = answer.plan_url;
              plan.textContent = form.dataset.msgPlan;
              status.append(" ", plan);
            }
            return;
          }
          return refreshCardList().then(watchGenerating);
        });
      }).catch(function () {
        status.className = "doc-generate-status is-refused";
        status.textContent = form.dataset.msgFailed;
      }).then(function () { button.disabled = false; });
    });
  });

  watchGenerating();
})();
