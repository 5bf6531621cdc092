// certgate /appliance: small progressive enhancements. Every page works without them.
(function () {
  "use strict";

  // "Select all on this page" checkboxes: data-check-all="<name of the row checkboxes>".
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!(box instanceof HTMLInputElement) || !box.dataset.checkAll) return;
    var form = box.form || box.closest("form");
    if (!form) return;
    form.querySelectorAll('input[type="checkbox"][name="' + box.dataset.checkAll + '"]')
      .forEach(function (row) { row.checked = box.checked; });
  });

  // Copy buttons: data-copy="<id of the field to copy>".
  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element ? event.target.closest("[data-copy]") : null;
    if (!button) return;
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) return;
    var say = function (text) {
      var note = button.parentElement && button.parentElement.querySelector(".copied");
      if (note) note.textContent = text;
    };
    field.focus();
    field.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(
        function () { say("Copied to the clipboard."); },
        function () { say("Press Ctrl+C (⌘C) to copy the selected text."); });
    } else {
      say(document.execCommand && document.execCommand("copy")
        ? "Copied to the clipboard." : "Press Ctrl+C (⌘C) to copy the selected text.");
    }
  });

  // Slow forms (key generation, uploads): say so while the server works.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-busy")) return;
    var submitter = event.submitter;
    if (submitter && submitter.getAttribute("formnovalidate") !== null) return;
    var note = form.querySelector(".busy");
    if (note) note.textContent = note.getAttribute("data-busy-text") || "Working…";
    form.setAttribute("aria-busy", "true");
  });
})();
