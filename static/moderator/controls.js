// Moderator controls: filled in below.
