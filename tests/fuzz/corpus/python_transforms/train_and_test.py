train_tf = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor()])
test_tf = T.Compose(
  [T.Resize(256), T.CenterCrop(size=224), T.ToTensor(),
   T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),])
'''docstring: T.Compose([T.Grayscale()])'''
t = Compose([PILToTensor(), Normalize(127.5, 127.5)])  # comment Compose([
