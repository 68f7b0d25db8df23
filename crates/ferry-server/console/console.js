// The console: signs an administrator in and shows the operator's pages.
