// The discovery page: ticking a facet, or changing the sort of a date,
// searches again at once. Without script the "Search" button does it.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("discover-form");
  if (!form) return;
  form.querySelectorAll("input[type=checkbox]").forEach((box) => {
    box.addEventListener("change", () => form.submit());
  });
});
