// The pages' only script: the Content-Security-Policy allows no inline
// code. A control marked data-autosubmit submits its form when it changes
// (facet checkboxes, role selectors); a log marked data-follow (a running
// build's) grows as its stream comes, and the page reloads once it ends.
document.addEventListener("change", (event) => {
  const control = event.target;
  if (control instanceof Element && control.matches("[data-autosubmit]") && control.form) {
    control.form.submit();
  }
});

const followed = document.querySelector("pre[data-follow]");
if (followed) {
  (async () => {
    try {
      const response = await fetch(followed.dataset.follow, { credentials: "same-origin" });
      if (response.ok && response.body) {
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          followed.textContent += decoder.decode(value, { stream: true });
          followed.scrollTop = followed.scrollHeight;
        }
      }
    } finally {
      setTimeout(() => location.reload(), 500);
    }
  })();
}
