// The pages' only script: the Content-Security-Policy allows no inline
// code. A control marked data-autosubmit submits its form when it changes
// (facet checkboxes, role selectors).
document.addEventListener("change", (event) => {
  const control = event.target;
  if (control instanceof Element && control.matches("[data-autosubmit]") && control.form) {
    control.form.submit();
  }
});
