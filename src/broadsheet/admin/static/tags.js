// Suggest tags after each comma: the datalist offers "what is typed so far, <tag>".
(function () {
  var input = document.querySelector('[data-suggest="tags"]');
  var list = document.getElementById('tag-names');
  if (!input || !list) return;
  var names = Array.prototype.map.call(list.options, function (o) { return o.value; });
  input.addEventListener('input', function () {
    var cut = input.value.lastIndexOf(',');
    var head = cut < 0 ? '' : input.value.slice(0, cut + 1) + ' ';
    var typed = input.value.slice(cut + 1).trim().toLowerCase();
    list.innerHTML = '';
    names.filter(function (n) { return n.toLowerCase().indexOf(typed) === 0; })
      .slice(0, 20).forEach(function (n) {
        var option = document.createElement('option');
        option.value = head + n;
        list.appendChild(option);
      });
  });
})();
