/* DealDocs CRM pages: drag deals across the board, and the lead conversion form.
   Plain JavaScript, no build step. Every action also works without it (forms post). */
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector("meta[name=csrf-token]");
    return meta ? meta.content : "";
  }

  // --- the deal board ----------------------------------------------------------------------

  function setupBoard(board) {
    var message = document.querySelector(".board-message");
    var dragged = null;

    function showMessage(text) {
      message.textContent = text;
      message.hidden = !text;
    }

    function columnOf(node) {
      return node && node.closest("[data-stage-id]");
    }

    function updateTotals(columns) {
      board.querySelectorAll("[data-stage-id]").forEach(function (column) {
        var totals = columns[column.dataset.stageId];
        if (!totals) return;
        column.querySelector("[data-count]").textContent = totals.count;
        column.querySelector("[data-sum]").textContent = totals.amount_display;
        column.querySelector(".board-empty").hidden = totals.count > 0;
      });
    }

    function keepSelectInStep(card) {
      var select = card.querySelector("select[name=stage_id]");
      if (select) select.value = columnOf(card).dataset.stageId;
    }

    function moveBack(card, from, before) {
      from.insertBefore(card, before);
      keepSelectInStep(card);
    }

    function send(card, column, from, before) {
      card.classList.add("is-saving");
      fetch("/deals/" + card.dataset.dealId + "/move", {
        method: "POST",
        credentials: "same-origin",
        headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken()},
        body: JSON.stringify({stage_id: Number(column.dataset.stageId), filters: JSON.parse(board.dataset.filters || "{}")})
      }).then(function (response) {
        return response.json().catch(function () { return {ok: false}; });
      }).then(function (result) {
        if (!result.ok) throw new Error(result.error || board.dataset.error);
        showMessage("");
        updateTotals(result.columns);
      }).catch(function (problem) {
        moveBack(card, from, before);
        showMessage(problem instanceof TypeError ? board.dataset.error : problem.message);  // TypeError: no network
      }).finally(function () {
        card.classList.remove("is-saving");
      });
    }

    board.addEventListener("dragstart", function (event) {
      var card = event.target.closest && event.target.closest("[data-deal-id]");
      if (!card) return;
      dragged = {card: card, from: card.parentNode, before: card.nextSibling};
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", card.dataset.dealId);
      card.classList.add("is-dragging");
    });

    board.addEventListener("dragend", function () {
      if (dragged) dragged.card.classList.remove("is-dragging");
      board.querySelectorAll(".is-drop-target").forEach(function (c) { c.classList.remove("is-drop-target"); });
    });

    board.addEventListener("dragover", function (event) {
      var column = columnOf(event.target);
      if (!dragged || !column) return;
      event.preventDefault();  // allows the drop
      event.dataTransfer.dropEffect = "move";
      board.querySelectorAll(".is-drop-target").forEach(function (c) {
        if (c !== column) c.classList.remove("is-drop-target");
      });
      column.classList.add("is-drop-target");
    });

    board.addEventListener("drop", function (event) {
      var column = columnOf(event.target);
      if (!dragged || !column) return;
      event.preventDefault();
      var move = dragged;
      dragged = null;
      move.card.classList.remove("is-dragging");  // dragend may not reach a card that changed column
      column.classList.remove("is-drop-target");
      if (columnOf(move.card) === column) return;
      var cards = column.querySelector("[data-cards]");
      cards.insertBefore(move.card, cards.firstChild);  // newest first, as the board lists them
      keepSelectInStep(move.card);
      send(move.card, column, move.from, move.before);
    });
  }

  // --- lead conversion ---------------------------------------------------------------------

  function setupConversion(form) {
    function refresh(section) {
      var include = section.querySelector("[data-include]");
      var chosen = section.querySelector("[data-use]:checked");
      var fields = section.querySelector("[data-new-fields]");
      section.classList.toggle("is-off", !include.checked);
      fields.hidden = !include.checked || (chosen !== null && chosen.value !== "new");
    }
    form.querySelectorAll("[data-target]").forEach(function (section) {
      refresh(section);
      section.addEventListener("change", function () { refresh(section); });
    });
  }

  // A list's "select all on this page" box for making documents for many records at once.
  function setupSelectAll(box) {
    box.addEventListener("change", function () {
      document.querySelectorAll("input[name=record_ids][form=generate-batch]").forEach(function (row) {
        row.checked = box.checked;
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-select-all]").forEach(setupSelectAll);
    document.querySelectorAll("[data-board]").forEach(setupBoard);
    document.querySelectorAll("[data-convert]").forEach(setupConversion);
  });
})();
