// The editor's images: a button, drag-and-drop onto the body, and paste from the clipboard.
// Each asks for the alt text, uploads the image to the media library (the same endpoint as
// its form, answering JSON), and inserts ![alt](address) at the cursor. Without this script
// the media library's form uploads, and the feature-image picker is a plain file field.
(function () {
  var tools = document.querySelector('.image-tools');
  var form = document.getElementById('post-form');
  var body = form && form.querySelector('textarea.markdown');
  if (!tools || !body) return;
  var url = tools.getAttribute('data-upload-url');
  var button = tools.querySelector('.insert-image');
  var chooser = tools.querySelector('.insert-image-file');
  var status = tools.querySelector('.image-status');
  var token = form.querySelector('input[name="csrf_token"]');
  tools.hidden = false;

  function say(text) { status.textContent = text; }

  function stem(name) {
    return (name || '').replace(/\.[^.]*$/, '').replace(/[-_]+/g, ' ').trim();
  }

  function insert(text) {
    body.focus();
    var start = body.selectionStart, end = body.selectionEnd;
    var before = body.value.slice(0, start);
    var lead = before && !/\n\n$/.test(before) ? (/\n$/.test(before) ? '\n' : '\n\n') : '';
    body.setRangeText(lead + text + '\n', start, end, 'end');
    body.dispatchEvent(new Event('input', { bubbles: true }));
  }

  function upload(file) {
    if (!file || !/^image\//.test(file.type)) {
      say('Only images can be inserted here.');
      return;
    }
    var alt = window.prompt('Describe the image for people who cannot see it (alt text):',
                            stem(file.name));
    if (alt === null) { say('Not inserted.'); return; }
    var data = new FormData();
    data.append('file', file, file.name || 'pasted-image.png');
    data.append('alt', alt);
    if (token) data.append('csrf_token', token.value);
    say('Uploading ' + (file.name || 'the image') + '…');
    fetch(url, {
      method: 'POST',
      body: data,
      credentials: 'same-origin',
      headers: { 'Accept': 'application/json', 'X-CSRFToken': token ? token.value : '' }
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        if (!response.ok) throw new Error(answer.error || 'the upload failed (' + response.status + ')');
        insert(answer.markdown);
        say('Inserted ' + (file.name || 'the image') + '.');
      });
    }).catch(function (error) { say('Not inserted: ' + error.message); });
  }

  function imagesIn(list) {
    var found = [];
    for (var i = 0; list && i < list.length; i++) {
      var item = list[i];
      var file = item.kind === 'file' ? item.getAsFile() : (item instanceof File ? item : null);
      if (file && /^image\//.test(file.type)) found.push(file);
    }
    return found;
  }

  button.addEventListener('click', function () { chooser.click(); });
  chooser.addEventListener('change', function () {
    Array.prototype.forEach.call(chooser.files, upload);
    chooser.value = '';
  });
  body.addEventListener('paste', function (event) {
    var files = imagesIn(event.clipboardData && event.clipboardData.items);
    if (!files.length) return;  // text is pasted as text
    event.preventDefault();
    files.forEach(upload);
  });
  body.addEventListener('dragover', function (event) {
    if (event.dataTransfer && Array.prototype.indexOf.call(event.dataTransfer.types, 'Files') >= 0) {
      event.preventDefault();
      body.classList.add('dragging');
    }
  });
  body.addEventListener('dragleave', function () { body.classList.remove('dragging'); });
  body.addEventListener('drop', function (event) {
    body.classList.remove('dragging');
    var files = imagesIn(event.dataTransfer && event.dataTransfer.files);
    if (!files.length) return;
    event.preventDefault();
    files.forEach(upload);
  });
})();
