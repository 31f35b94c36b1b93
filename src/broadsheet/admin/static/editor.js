// The post editor's script. Guards: Enter in a one-line field never submits the form (a textarea
// keeps its Enter), and leaving with unsaved changes asks first (armed on input and on a page the
// server sent back with errors; disarmed by a save, or a submit that leaves the page). Live work:
// the server renders a preview as the writer types, counts the words, autosaves drafts (a post
// that is not a draft is saved only on purpose: Save, or Ctrl/Cmd-S), and when someone else saved
// first shows the difference and lets the writer keep theirs or take the saved version.
(function () {
  var form = document.getElementById('post-form');
  if (!form) return;
  var IDLE_MS = 3000;      // an autosave once the writer pauses this long…
  var LONGEST_MS = 15000;  // …or at the latest this long after the first unsaved change
  var PREVIEW_MS = 400;

  // A save the server refused comes back with what was typed, still unsaved.
  var dirty = !!(form.querySelector('.has-error') || document.querySelector('.flash.error'));
  var edits = 0;  // bumped by every change: a save clears `dirty` only if none came meanwhile
  var postId = form.dataset.postId;
  var autosave = form.dataset.autosave === 'on';
  var frame = document.querySelector('iframe[name=preview]');
  var previewButton = form.querySelector('button[formtarget=preview]');
  var wordCount = document.getElementById('word-count');
  var saveState = document.getElementById('save-status');
  var saveAge = document.getElementById('save-age');
  var panel = document.getElementById('conflict');
  var conflict = null;  // the refused save's answer while the writer decides
  var saveTimer = null, firstUnsaved = 0, inFlight = false, queued = null, leaving = null;
  var savedAt = 0, pending = '';  // pending: what the status adds, unannounced, to the outcome

  form.addEventListener('keydown', function (event) {
    var target = event.target;
    if (event.key === 'Enter' && target.tagName === 'INPUT' &&
        ['submit', 'button', 'reset', 'image'].indexOf(target.type) < 0) {
      event.preventDefault();
    }
  });
  function changed(event) {
    dirty = true;
    edits += 1;
    var name = event.target.name;
    if (name === 'markdown' || name === 'title') schedulePreview();
    if (conflict) return;
    pending = autosave ? 'unsaved changes'
      : 'unsaved changes: a post that is not a draft is saved only when you save it (Ctrl-S)';
    showAge();
    if (autosave) scheduleSave();
  }
  form.addEventListener('input', changed);
  form.addEventListener('change', changed);
  form.addEventListener('submit', function (event) {
    var by = event.submitter;
    var target = by && by.getAttribute('formtarget');
    if (target && target !== '_self') return;  // the preview opens in its frame
    if (inFlight) {
      // Wait for the save in flight (it may create the post, or move its version), then go.
      event.preventDefault();
      leaving = by || true;
      return;
    }
    clearTimeout(saveTimer);
    dirty = false;
  });
  window.addEventListener('beforeunload', function (event) {
    if (!dirty) return;
    event.preventDefault();
    event.returnValue = '';
  });

  function fields(extra) {
    var data = new FormData(form);
    data.set('post_id', postId);
    Object.keys(extra).forEach(function (name) { data.set(name, extra[name]); });
    return data;
  }
  function send(url, data) {
    return fetch(url, {method: 'POST', body: data, credentials: 'same-origin',
                       headers: {Accept: 'application/json'}})
      .then(function (response) {
        return response.json().then(function (body) {
          return {ok: response.ok, status: response.status, body: body};
        }, function () {  // an HTML page: the form expired, or the session did
          return {ok: false, status: response.status,
                  body: {message: 'the page is out of date; copy your text and reload it'}};
        });
      });
  }

  // The live preview, in the frame the Preview button also fills.
  var previewTimer = null, previewSeq = 0;
  function schedulePreview() {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(refreshPreview, PREVIEW_MS);
  }
  function refreshPreview() {
    var seq = ++previewSeq;
    send(form.dataset.previewUrl, fields({})).then(function (answer) {
      if (seq !== previewSeq || !answer.ok) return;
      showPreview(form.elements.title.value, answer.body.html);
      var words = answer.body.words;
      wordCount.textContent = words + (words === 1 ? ' word' : ' words') + ' · ' +
        answer.body.minutes + ' min read';
    }, function () {});
  }
  function showPreview(title, html) {
    var doc = frame && frame.contentDocument;
    if (!doc || !doc.body) return;
    var article = doc.querySelector('article.post-preview');
    if (!article) {  // the empty frame, before any preview: give it the preview page's shape
      var sheet = doc.createElement('link');
      sheet.rel = 'stylesheet';
      sheet.href = form.dataset.stylesheet;
      doc.head.appendChild(sheet);
      doc.body.className = 'preview-body';
      article = doc.createElement('article');
      article.className = 'post-preview';
      var body = doc.createElement('div');
      body.className = 'post-body';
      article.append(doc.createElement('h1'), body);
      doc.body.replaceChildren(article);
    }
    article.querySelector('h1').textContent = title || 'Untitled';
    // Sanitised by the server (the publishing sanitiser); the page's CSP covers the frame too.
    article.querySelector('.post-body').innerHTML = html;
  }

  // Saving: autosave for drafts, Ctrl/Cmd-S for any post. The live region says only outcomes
  // ("Saved", "Not saved: why"), so a screen reader is not told of every pause in typing.
  function say(text) {
    if (saveState.textContent !== text) saveState.textContent = text;
    showAge();
  }
  function showAge() {
    var parts = [];
    if (savedAt && saveState.textContent === 'Saved') {
      var seconds = Math.floor((Date.now() - savedAt) / 1000);
      parts.push(seconds < 60 ? seconds + ' s ago' : Math.floor(seconds / 60) + ' min ago');
    }
    if (pending) parts.push(pending);
    saveAge.textContent = parts.join(' · ');
  }
  setInterval(showAge, 1000);

  function scheduleSave() {
    var now = Date.now();
    if (!firstUnsaved) firstUnsaved = now;
    clearTimeout(saveTimer);
    saveTimer = setTimeout(function () { save('auto'); },
                           Math.max(0, Math.min(IDLE_MS, firstUnsaved + LONGEST_MS - now)));
  }
  function save(mode) {
    clearTimeout(saveTimer);
    if (inFlight) {
      if (queued !== 'manual') queued = mode;
      return;
    }
    inFlight = true;
    firstUnsaved = 0;
    var seen = edits;
    pending = 'saving…';
    showAge();
    send(form.dataset.saveUrl, fields({automatic: mode === 'auto' ? '1' : '0'})).then(function (answer) {
      inFlight = false;
      pending = '';
      if (answer.ok) saved(answer.body, seen);
      else if (answer.status === 409 && answer.body.changes) showConflict(answer.body);
      else refused(answer.body);
      after();
    }, function () {
      inFlight = false;
      pending = '';
      say('Not saved: the server could not be reached; trying again.');
      if (autosave) saveTimer = setTimeout(function () { save('auto'); }, 10000);
      after();
    });
  }
  function after() {
    if (leaving) {
      var by = leaving;
      leaving = null;
      form.requestSubmit(by === true ? undefined : by);
    } else if (queued && !conflict) {
      var mode = queued;
      queued = null;
      save(mode);
    }
  }
  function saved(body, seen) {
    form.elements.version.value = body.version;
    if (!postId) {  // the first autosave created the post: from now on this page edits it
      postId = String(body.post_id);
      form.setAttribute('action', body.edit_url);
      if (previewButton) previewButton.setAttribute('formaction', body.preview_url);
      history.replaceState(null, '', body.edit_url);
    }
    autosave = autosave && body.status === 'draft';
    savedAt = Date.now();
    if (edits === seen) {
      dirty = false;
    } else if (autosave) {
      pending = 'unsaved changes';
      scheduleSave();
    }
    say('Saved');
  }
  function refused(body) {
    var problems = body.fields ? Object.keys(body.fields).map(function (name) {
      return name.replace(/_/g, ' ') + ': ' + body.fields[name];
    }).join('; ') : body.message;
    if (body.fields && body.fields.status) autosave = false;  // published meanwhile
    say('Not saved: ' + problems);
  }
  document.addEventListener('keydown', function (event) {
    if ((event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === 's') {
      event.preventDefault();
      save('manual');
    }
  });

  // A conflict: the saved version beside the writer's, and the writer's choice.
  var LABELS = {title: 'Title', slug: 'Slug', tags: 'Tags', custom_excerpt: 'Excerpt',
                featured: 'Featured', meta_title: 'SEO title', meta_description: 'SEO description',
                markdown: 'Body'};
  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function describe(change) {
    var box = element('div', 'change');
    box.append(element('h3', '', LABELS[change.field] || change.field));
    if (change.diff.length) {
      var pre = element('pre', 'diff');
      change.diff.forEach(function (line) {
        var kind = line[0] === '+' ? 'add' : line[0] === '-' ? 'del' : 'ctx';
        pre.append(element('span', kind, line), '\n');
      });
      box.append(pre);
    } else {
      var p = element('p');
      p.append(element('del', '', change.before), ' → ', element('ins', '', change.after));
      box.append(p);
    }
    return box;
  }
  function showConflict(body) {
    conflict = body;
    queued = null;
    clearTimeout(saveTimer);
    say('Not saved: someone else saved this post.');
    document.getElementById('conflict-message').textContent = body.message;
    document.getElementById('conflict-changes').replaceChildren.apply(
      document.getElementById('conflict-changes'), body.changes.map(describe));
    panel.hidden = false;
    document.getElementById('conflict-heading').focus();
  }
  function settle() {
    form.elements.version.value = conflict.version;
    conflict = null;
    panel.hidden = true;
    form.elements.markdown.focus();
  }
  document.getElementById('keep-mine').addEventListener('click', function () {
    settle();
    save('manual');  // on purpose, over the version just compared
  });
  document.getElementById('take-saved').addEventListener('click', function () {
    var saved = conflict.saved;
    Object.keys(saved).forEach(function (name) {
      var input = form.elements[name];
      if (!input) return;
      if (input.type === 'checkbox') input.checked = saved[name];
      else input.value = saved[name];
    });
    settle();
    dirty = false;
    say('Took the saved version');
    refreshPreview();
  });

  refreshPreview();
  if ('conflict' in form.dataset) {  // the server refused a save of the form: show why
    send(form.dataset.compareUrl, fields({})).then(function (answer) {
      if (answer.status === 409 && answer.body.changes) showConflict(answer.body);
    }, function () {});
  }
})();
