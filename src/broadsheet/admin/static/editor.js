// The post editor's guards: Enter in a one-line field never submits the form (a textarea keeps
// its Enter), and leaving with unsaved changes asks first. Armed on input (and on a page the
// server sent back with errors), disarmed on a submit that leaves the page (a preview opening
// in its frame keeps the warning armed).
(function () {
  var form = document.getElementById('post-form');
  if (!form) return;
  // A save the server refused comes back with what was typed, still unsaved.
  var dirty = !!(form.querySelector('.has-error') || document.querySelector('.flash.error'));
  form.addEventListener('keydown', function (event) {
    var target = event.target;
    if (event.key === 'Enter' && target.tagName === 'INPUT' &&
        ['submit', 'button', 'reset', 'image'].indexOf(target.type) < 0) {
      event.preventDefault();
    }
  });
  function arm() { dirty = true; }
  form.addEventListener('input', arm);
  form.addEventListener('change', arm);
  form.addEventListener('submit', function (event) {
    var by = event.submitter;
    var target = by && by.getAttribute('formtarget');
    if (!target || target === '_self') dirty = false;
  });
  window.addEventListener('beforeunload', function (event) {
    if (!dirty) return;
    event.preventDefault();
    event.returnValue = '';
  });
})();
